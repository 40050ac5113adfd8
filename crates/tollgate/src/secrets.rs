//! `tollgate secrets`: provider credentials in the embedded, encrypted keystore (AC-1).
//!
//! Values are read from stdin, never from argv, where they would land in shell history and in
//! every process listing.

use std::io::{IsTerminal, Read};

use anyhow::{Result, bail};
use secrecy::SecretString;

use crate::{Outcome, setup};

/// Largest value accepted on stdin.
const MAX_SECRET_BYTES: u64 = tollgate_store::keystore::MAX_VALUE_BYTES as u64;

/// Keystore subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum SecretsCommand {
    /// Store a secret read from stdin (e.g. `tollgate secrets set openai < key.txt`).
    Set {
        /// Name to store it under; refer to it as keystore://NAME.
        name: String,
    },
    /// List secret names (never values).
    List,
    /// Delete a secret.
    Delete {
        /// Name.
        name: String,
    },
}

/// Run a secrets subcommand.
pub async fn run(global: &setup::GlobalArgs, cmd: SecretsCommand) -> Result<Outcome> {
    setup::init_logging(false);
    let loaded = setup::load(global)?;
    let opened = setup::open(global, &loaded.data_dir).await?;
    match cmd {
        SecretsCommand::Set { name } => {
            if !tollgate_store::keystore::valid_name(&name) {
                bail!("invalid secret name {name:?}: use 1-128 characters of A-Z a-z 0-9 . _ - /");
            }
            let stdin = std::io::stdin();
            if stdin.is_terminal() {
                eprintln!("Paste the value for {name}, then press Enter and Ctrl-D:");
            }
            let mut buf = String::new();
            stdin
                .lock()
                .take(MAX_SECRET_BYTES + 1)
                .read_to_string(&mut buf)?;
            if buf.len() as u64 > MAX_SECRET_BYTES {
                bail!("value is larger than {MAX_SECRET_BYTES} bytes");
            }
            let value = buf.trim_end_matches(['\n', '\r']);
            if value.is_empty() {
                bail!("no value on stdin; usage: tollgate secrets set {name} < file");
            }
            opened
                .keystore
                .set(&name, &SecretString::from(value.to_owned()))
                .await?;
            println!(
                "Stored {name} in the keystore (encrypted). Reference it as \"keystore://{name}\"."
            );
        }
        SecretsCommand::List => {
            for n in opened.keystore.names().await? {
                println!("{n}");
            }
        }
        SecretsCommand::Delete { name } => {
            if !opened.keystore.delete(&name).await? {
                bail!("no secret named {name}");
            }
            println!("Deleted {name}.");
        }
    }
    Ok(Outcome::Ok)
}
