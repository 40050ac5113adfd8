//! The credential catalogue: every vendor's key format (prefix rules), the provider words
//! that name keys without a prefix, the assignment patterns, and the name words that make an
//! assignment benign or strong. Data only; the matching logic is in `secret.rs`.

use super::Check;

// Patterns follow each vendor's published format. Character classes never include a
// backslash or quote, so a key inside an escaped string ends where the string does.
// (id, description, keywords, pattern, check)
pub(super) const RULES: &[(&str, &str, &[&str], &str, Check)] = &[
    (
        "openai-api-key",
        "OpenAI API key",
        &["T3BlbkFJ", "sk-proj-", "sk-svcacct-", "sk-admin-"],
        r"\bsk-(?:proj-|svcacct-|admin-|None-)?[A-Za-z0-9_-]{20,}T3BlbkFJ[A-Za-z0-9_-]{20,}|\bsk-(?:proj|svcacct|admin)-[A-Za-z0-9_-]{40,}",
        Check::Random,
    ),
    (
        "anthropic-api-key",
        "Anthropic API key",
        &["sk-ant-"],
        r"\bsk-ant-(?:api\d\d|admin\d\d|oat\d\d|sid\d\d)-[A-Za-z0-9_-]{80,}",
        Check::Random,
    ),
    (
        "openrouter-api-key",
        "OpenRouter API key",
        &["sk-or-"],
        r"\bsk-or-v\d-[a-f0-9]{64}\b",
        Check::Random,
    ),
    (
        "huggingface-token",
        "Hugging Face access token",
        &["hf_", "api_org_"],
        r"\b(?:hf_|api_org_)[A-Za-z0-9]{34}\b",
        Check::Random,
    ),
    (
        "google-api-key",
        "Google / Gemini API key",
        &["AIza"],
        r"\bAIza[0-9A-Za-z_-]{35}(?:\b|$)",
        Check::Random,
    ),
    (
        "groq-api-key",
        "Groq API key",
        &["gsk_"],
        r"\bgsk_[A-Za-z0-9]{52}\b",
        Check::Random,
    ),
    (
        "replicate-api-token",
        "Replicate API token",
        &["r8_"],
        r"\br8_[A-Za-z0-9]{37}\b",
        Check::Random,
    ),
    (
        "perplexity-api-key",
        "Perplexity API key",
        &["pplx-"],
        r"\bpplx-[A-Za-z0-9]{48}\b",
        Check::Random,
    ),
    (
        "xai-api-key",
        "xAI API key",
        &["xai-"],
        r"\bxai-[A-Za-z0-9_-]{70,100}\b",
        Check::Random,
    ),
    (
        "together-api-key",
        "Together AI API key",
        &["tgp_v1_"],
        r"\btgp_v1_[A-Za-z0-9_-]{40,}",
        Check::Random,
    ),
    (
        "fireworks-api-key",
        "Fireworks AI API key",
        &["fw_"],
        r"\bfw_[A-Za-z0-9]{24,}\b",
        Check::Random,
    ),
    (
        "langsmith-api-key",
        "LangSmith API key",
        &["lsv2_"],
        r"\blsv2_(?:pt|sk)_[a-f0-9]{32}_[a-f0-9]{10}\b",
        Check::Random,
    ),
    (
        "pinecone-api-key",
        "Pinecone API key",
        &["pcsk_"],
        r"\bpcsk_[A-Za-z0-9_]{50,}\b",
        Check::Random,
    ),
    (
        "cohere-api-key",
        "Cohere API key",
        &["co_"],
        r"\bco_[A-Za-z0-9]{40}\b",
        Check::Random,
    ),
    (
        "aws-access-key-id",
        "AWS access key id",
        &["AKIA", "ASIA", "ABIA", "ACCA"],
        r"\b(?:AKIA|ASIA|ABIA|ACCA)[A-Z2-7]{16}\b",
        Check::Random,
    ),
    (
        "azure-storage-key",
        "Azure storage account key",
        &["AccountKey="],
        r"AccountKey=[A-Za-z0-9+/]{86}==",
        Check::Random,
    ),
    (
        "azure-ad-client-secret",
        "Azure AD client secret",
        &["Q~"],
        r"\b[A-Za-z0-9_~.]{3}\dQ~[A-Za-z0-9_~.-]{31,34}\b",
        Check::Random,
    ),
    (
        "github-token",
        "GitHub token",
        &["ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"],
        r"\b(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{36}\b|\bgithub_pat_[A-Za-z0-9_]{82}\b",
        Check::Random,
    ),
    (
        "gitlab-token",
        "GitLab personal access token",
        &["glpat-"],
        r"\bglpat-[A-Za-z0-9_-]{20,}\b",
        Check::Random,
    ),
    (
        "slack-token",
        "Slack token",
        &["xox"],
        r"\bxox[abposr]-[A-Za-z0-9-]{10,}\b",
        Check::Random,
    ),
    (
        "stripe-secret-key",
        "Stripe secret key",
        &["sk_live_", "rk_live_"],
        r"\b[sr]k_live_[A-Za-z0-9]{24,}\b",
        Check::Random,
    ),
    (
        "google-oauth-client-secret",
        "Google OAuth client secret",
        &["GOCSPX-"],
        r"\bGOCSPX-[A-Za-z0-9_-]{28}\b",
        Check::Random,
    ),
    (
        "slack-webhook",
        "Slack incoming-webhook URL",
        &["hooks.slack.com"],
        r"https://hooks\.slack\.com/(?:services|workflows)/[A-Za-z0-9+/_-]{20,}",
        Check::Random,
    ),
    (
        "sendgrid-api-key",
        "SendGrid API key",
        &["SG."],
        r"\bSG\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}\b",
        Check::Random,
    ),
    (
        "npm-token",
        "npm access token",
        &["npm_"],
        r"\bnpm_[A-Za-z0-9]{36}\b",
        Check::Random,
    ),
    (
        "pypi-token",
        "PyPI upload token",
        &["pypi-AgE"],
        r"\bpypi-AgE[A-Za-z0-9_-]{50,}",
        Check::Random,
    ),
    (
        "url-credentials",
        "password in a connection URL",
        &["://"],
        r"\b[a-z][a-z0-9+.-]{1,20}://[A-Za-z0-9._%~-]{1,64}:([^@/\s:'\x22`<>{}$]{8,128})@[A-Za-z0-9.-]+",
        Check::Password,
    ),
    (
        "jwt",
        "JSON Web Token",
        &["eyJ"],
        r"\beyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{20,}",
        Check::Jwt,
    ),
    (
        "private-key",
        "PEM private key",
        &["PRIVATE KEY-----"],
        r"-----BEGIN (?:RSA |EC |DSA |OPENSSH |ENCRYPTED |PGP )?PRIVATE KEY(?: BLOCK)?-----",
        Check::Pem,
    ),
    (
        "tollgate-key",
        "tollgate key",
        &["tg_"],
        r"\btg_(?:live|test|admin)_[0-9A-Za-z]{36}\b",
        Check::TollgateChecksum,
    ),
    (
        "openai-compatible-api-key",
        "sk- API key (DeepSeek, OpenAI legacy or compatible)",
        &["sk-"],
        r"\bsk-[A-Za-z0-9]{32,64}\b",
        Check::Random,
    ),
];

/// Provider words in a variable name (or nearby host) → rule id and description, for keys
/// that have no prefix of their own. Order matters: the first word found wins.
pub(super) const ASSIGNMENT_PROVIDERS: &[(&str, &str, &str)] = &[
    ("azure", "azure-openai-api-key", "Azure OpenAI API key"),
    ("cohere", "cohere-api-key", "Cohere API key"),
    ("co_api", "cohere-api-key", "Cohere API key"),
    ("mistral", "mistral-api-key", "Mistral API key"),
    ("together", "together-api-key", "Together AI API key"),
    ("wandb", "wandb-api-key", "Weights & Biases API key"),
    ("deepseek", "deepseek-api-key", "DeepSeek API key"),
    ("pinecone", "pinecone-api-key", "Pinecone API key"),
    ("fireworks", "fireworks-api-key", "Fireworks AI API key"),
    ("openai", "openai-api-key", "OpenAI API key"),
    ("anthropic", "anthropic-api-key", "Anthropic API key"),
    ("groq", "groq-api-key", "Groq API key"),
    ("replicate", "replicate-api-token", "Replicate API token"),
    (
        "huggingface",
        "huggingface-token",
        "Hugging Face access token",
    ),
    ("langsmith", "langsmith-api-key", "LangSmith API key"),
    ("langchain", "langsmith-api-key", "LangSmith API key"),
];

/// A name that ends like a credential (`OPENAI_API_KEY`, `apiKey`, `"token"`, `db_password`),
/// an assignment operator, an optional quote, and the value.
/// Also accepted between name and value: a closing `]` (`os.environ["X"] = …`), a type
/// annotation (`X: str = …`), or a comma after a quoted name (`setdefault("X", "…")`).
pub(super) const ASSIGNMENT: &str = r#"(?i)([A-Za-z0-9_.-]*(?:key|token|secret|passwd|password|pwd|credential|credentials|auth))(?:["'`]\]?|\])?(?:\s*:\s*(?:str|string|&str|&'static str|String))?\s*(:=|=>|=|:|,)\s*(?:"|'|`)?([A-Za-z0-9_+/=.~-]{16,256})"#;

/// Kubernetes / ECS style `- name: X` followed by `value: …` on the next line.
pub(super) const NAME_VALUE: &str = r#"(?i)\bname["']?\s*:\s*["']?([A-Za-z0-9_.-]*(?:key|token|secret|password))["']?\s*,?\s*\n?\s*["']?value["']?\s*(:)\s*["']?([A-Za-z0-9_+/=.~-]{16,256})"#;

/// Dockerfile `ENV NAME value` (the legacy form without `=`).
pub(super) const DOCKER_ENV: &str = r#"(?m)^\s*ENV\s+([A-Za-z0-9_]*(?:KEY|TOKEN|SECRET|PASSWORD))(\s)+["']?([A-Za-z0-9_+/=.~-]{16,256})"#;

/// XML elements: `<MistralApiKey>…</MistralApiKey>`.
pub(super) const XML_ELEMENT: &str =
    r"(?i)<([A-Za-z0-9_.:-]*(?:key|token|secret|password))(>)\s*([A-Za-z0-9_+/=.~-]{16,256})\s*</";

/// `Authorization: Bearer …` with a literal token.
pub(super) const BEARER: &str = r"(?i)(bearer)(\s)+([A-Za-z0-9._~+/-]{24,512})";

/// Name fragments that mark a non-secret despite a credential-like suffix.
pub(super) const BENIGN_NAME_WORDS: &[&str] = &[
    "public",
    "cache",
    "sort_key",
    "partition",
    "foreign",
    "idempot",
    "page_token",
    "csrf",
    "next_token",
    "max_token",
    "num_token",
    "count",
    "hash",
    "file",
    "path",
    "keyboard",
    "monkey",
    "turkey",
    "hotkey",
    "_ref",
    "label",
    "_name",
    "_id",
    "_url",
    "_env",
    "_var",
    "websocket",
];

/// The same, matched with case and separators removed (`NextToken`, `next_page_token`):
/// pagination cursors and storage object keys.
pub(super) const BENIGN_SQUASHED_NAMES: &[&str] = &[
    "nexttoken",
    "pagetoken",
    "continuationtoken",
    "forwardtoken",
    "backwardtoken",
    "synctoken",
    "cursortoken",
    "s3key",
    "objectkey",
    "cachekey",
    "sortkey",
    "partitionkey",
    "rangekey",
    "hashkey",
];

/// Name fragments strong enough to accept a hex-only value (hex alone is usually a hash).
pub(super) const STRONG_NAME_WORDS: &[&str] = &[
    "api_key",
    "apikey",
    "api-key",
    "secret",
    "token",
    "passw",
    "access_key",
    "accesskey",
    "private",
    "auth",
];
