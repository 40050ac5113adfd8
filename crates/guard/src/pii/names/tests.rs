//! Unit tests of the name and place rules.

use super::*;

fn found(text: &str) -> Vec<(String, PiiType)> {
    let mut out = Vec::new();
    scan(text, &mut out);
    out.iter()
        .filter(|d| d.score >= 0.5)
        .map(|d| (text[d.start..d.end].to_owned(), d.kind))
        .collect()
}

#[test]
fn first_and_last_name() {
    assert_eq!(
        found("Yesterday Jessica Smith called."),
        vec![("Jessica Smith".into(), PiiType::Person)]
    );
    assert_eq!(
        found("ask Laura Garcia MD about it"),
        vec![("Laura Garcia MD".into(), PiiType::Person)]
    );
    assert_eq!(
        found("John A. Smith signed"),
        vec![("John A. Smith".into(), PiiType::Person)]
    );
}

#[test]
fn cues_and_honorifics() {
    assert_eq!(
        found("Hi, my name is Kari Ford and"),
        vec![("Kari Ford".into(), PiiType::Person)]
    );
    assert_eq!(
        found("Please forward to Dr. Okonkwo today"),
        vec![("Okonkwo".into(), PiiType::Person)]
    );
    assert_eq!(found("Dear Customer, thanks"), vec![]);
}

#[test]
fn lone_common_words_are_not_names() {
    assert!(found("Will you grant me access? May I ask?").is_empty());
    assert!(found("The Python code is in Rust").is_empty());
}

#[test]
fn places() {
    assert_eq!(
        found("They met in North Katiebury on Friday"),
        vec![("North Katiebury".into(), PiiType::Location)]
    );
    assert_eq!(
        found("I moved to Smithtown last year"),
        vec![("Smithtown".into(), PiiType::Location)]
    );
    assert_eq!(
        found("flights from Paris, France"),
        vec![
            ("Paris".into(), PiiType::Location),
            ("France".into(), PiiType::Location)
        ]
    );
    assert_eq!(
        found("She lives in New Zealand"),
        vec![("New Zealand".into(), PiiType::Location)]
    );
    assert!(found("I work in Python and in December").is_empty());
}

#[test]
fn international_names() {
    assert_eq!(
        found("Yesterday Krisztián Szöllösy sent the files"),
        vec![("Krisztián Szöllösy".into(), PiiType::Person)]
    );
    assert_eq!(
        found("A coda by Elínborg Guðmundsdóttir closes it"),
        vec![("Elínborg Guðmundsdóttir".into(), PiiType::Person)]
    );
    assert_eq!(
        found("Tickets for Calquín Cazares are gone"),
        vec![("Calquín Cazares".into(), PiiType::Person)]
    );
}

#[test]
fn lists_labels_and_speakers() {
    let f = found("Olivia, Mateo and Sofia were late.");
    assert!(f.contains(&("Olivia".into(), PiiType::Person)), "{f:?}");
    assert!(f.contains(&("Sofia".into(), PiiType::Person)), "{f:?}");
    assert_eq!(
        found("Margaret: can you check this?"),
        vec![("Margaret".into(), PiiType::Person)]
    );
    assert_eq!(
        found("Full name:\n   Ingrid Haugen"),
        vec![("Ingrid Haugen".into(), PiiType::Person)]
    );
    let f = found("Jones, Mitchell and Williams won the bid");
    assert!(
        !f.iter()
            .any(|(v, k)| v == "Jones" || *k == PiiType::Location),
        "surnames in a list are not towns: {f:?}"
    );
}

#[test]
fn common_words_and_things_are_not_names() {
    for t in [
        "File name: Report",
        "Username: Admin",
        "Many began to leave early.",
        "Honey, we can't do that.",
        "Islam is a religion.",
        "Let's go: Python, Rust and Go are fine.",
        "Summary: Apple and Microsoft released updates.",
    ] {
        let f = found(t);
        assert!(!f.iter().any(|(_, k)| *k == PiiType::Person), "{t}: {f:?}");
    }
}

#[test]
fn places_after_strong_cues_and_in_capitals() {
    assert_eq!(
        found("She grew up in Vøringsfoss before the war"),
        vec![("Vøringsfoss".into(), PiiType::Location)]
    );
    assert_eq!(
        found("He flew to TRONDHEIM on Monday"),
        vec![("TRONDHEIM".into(), PiiType::Location)]
    );
    assert_eq!(
        found("we rushed back from Alabama to Atlanta"),
        vec![
            ("Alabama".into(), PiiType::Location),
            ("Atlanta".into(), PiiType::Location)
        ]
    );
    assert!(found("THANKS! MUCH MORE TO COME").is_empty());
    assert!(found("The team is based in Acme Labs now").is_empty());
    assert!(found("we moved to Kubernetes last year").is_empty());
}

#[test]
fn odd_unicode_is_safe() {
    for t in [
        "İstanbul'dan ǅemal Bijedić geldi",
        "flew to \u{202e}Oslo\u{202c} today",
        "Ünïcödé Jürgen\u{301} Müller\u{200b}Schmidt",
        "grew up in É",
        "Name:",
        "name? ",
        "flew to",
        "Ａｌｉｃｅ Ｓｍｉｔｈ",
    ] {
        let mut out = Vec::new();
        scan(t, &mut out);
        for d in out {
            assert!(
                t.is_char_boundary(d.start) && t.is_char_boundary(d.end),
                "{t}"
            );
        }
    }
}

// "Szczepańska's" was one token (the apostrophe joined the "s"), so a possessive name was
// never looked up.
#[test]
fn possessive_names_are_found() {
    assert_eq!(
        found("Wisława Szczepańska's killers were sentenced"),
        vec![("Wisława Szczepańska".into(), PiiType::Person)]
    );
    assert_eq!(
        found("the verses from Emmie Ström’s Cautionary Tales"),
        vec![("Emmie Ström".into(), PiiType::Person)]
    );
    // "O'Connor" still is one word; "'S" in capitals and a lone "'s" do not panic.
    assert_eq!(
        found("Yesterday Sean O'Connor called"),
        vec![("Sean O'Connor".into(), PiiType::Person)]
    );
    for t in ["'s", "JOHN'S", "Ann'sé", "x’s\u{301}", "’s’s"] {
        let mut out = Vec::new();
        scan(t, &mut out);
        for d in out {
            assert!(
                t.is_char_boundary(d.start) && t.is_char_boundary(d.end),
                "{t}"
            );
        }
    }
}

// "the corner of Kuusiku 7 and Alexander Flat" was masked as a person: a street word after
// a name makes a street.
#[test]
fn names_followed_by_a_street_word_are_streets() {
    let f = found("the corner of Kuusiku 7 and Alexander Flat");
    assert!(
        f.contains(&("Alexander Flat".into(), PiiType::StreetAddress)),
        "{f:?}"
    );
    for t in [
        "Ask the driver to stop at Inna Loop St.",
        "Meet me at P.O. Box 149 Philip Bypass",
    ] {
        let f = found(t);
        assert!(!f.iter().any(|(_, k)| *k == PiiType::Person), "{t}: {f:?}");
    }
    // Surnames that are also street words stay names.
    assert_eq!(
        found("Yesterday Jessica Meadows called"),
        vec![("Jessica Meadows".into(), PiiType::Person)]
    );
}

// Nouns in "-person" end in "son" like surnames: "Awarded Salesperson" was a person.
#[test]
fn person_nouns_are_not_surnames() {
    let f = found("Awarded Salesperson of the Month three times.");
    assert!(!f.iter().any(|(_, k)| *k == PiiType::Person), "{f:?}");
    assert_eq!(
        found("Yesterday Przemek Kucharski called"),
        vec![("Przemek Kucharski".into(), PiiType::Person)]
    );
}

#[test]
fn more_person_cues() {
    for (t, name) in [
        ("Sometimes people call me Csanád", "Csanád"),
        (
            "I would like to remove my kid Tadzio from the will.",
            "Tadzio",
        ),
        ("Leif, can I please speak to your boss?", "Leif"),
        ("Tosh Olsen lives at the end of the road", "Tosh Olsen"),
        ("Best wishes\n\n> Maha Cazares\n> Spain", "Maha Cazares"),
    ] {
        let f = found(t);
        assert!(f.contains(&(name.into(), PiiType::Person)), "{t}: {f:?}");
    }
    for t in [
        "Berkshire Hathaway is a holding company.",
        "Entertainment Weekly and others listed it.",
        "Action Items\nReview the draft",
    ] {
        let f = found(t);
        assert!(!f.iter().any(|(_, k)| *k == PiiType::Person), "{t}: {f:?}");
    }
}

#[test]
fn home_city_is_a_locative_cue() {
    let f = found("the economy of their home city Voorburg: cars");
    assert!(f.contains(&("Voorburg".into(), PiiType::Location)), "{f:?}");
}

#[test]
fn names_after_cues_in_other_languages() {
    for (text, name) in [
        (
            "Mein Name ist Jürgen Schmidt und ich wohne hier.",
            "Jürgen Schmidt",
        ),
        ("Hallo, ich heiße Katarzyna Nowak.", "Katarzyna Nowak"),
        ("Bonjour, je m'appelle Amélie Dubois.", "Amélie Dubois"),
        ("Hola, me llamo Javier García.", "Javier García"),
        ("Mi chiamo Giulia Rossi.", "Giulia Rossi"),
        ("Hoi, ik heet Pieter Bakker.", "Pieter Bakker"),
        ("Olá, me chamo Joana Ferreira.", "Joana Ferreira"),
        ("Меня зовут Иван Петров.", "Иван Петров"),
        ("Sehr geehrte Frau Oberhauser, danke.", "Oberhauser"),
        ("Bonjour Mme Lefebvre, merci.", "Lefebvre"),
        ("Liebe Maria, danke für alles.", "Maria"),
    ] {
        let got = found(text);
        assert!(
            got.iter().any(|(t, k)| t == name && *k == PiiType::Person),
            "{text}: {got:?}"
        );
    }
    // German capitalises every noun: a greeting before a noun is no name.
    for text in [
        "Liebe Grüße aus dem Büro",
        "Hallo Welt, das ist ein Test",
        "Beste Grüße und bis bald",
        "Hola a todos, bienvenidos",
    ] {
        assert!(
            found(text).iter().all(|(_, k)| *k != PiiType::Person),
            "{text}: {:?}",
            found(text)
        );
    }
}

#[test]
fn names_and_countries_typed_in_lower_case_after_a_cue() {
    assert_eq!(
        found("my name is john smith and i live in boston"),
        vec![("john smith".into(), PiiType::Person)]
    );
    assert_eq!(
        found("hi, i'm sarah. my email is below"),
        vec![("sarah".into(), PiiType::Person)]
    );
    assert_eq!(
        found("i'm originally from switzerland"),
        vec![("switzerland".into(), PiiType::Location)]
    );
    assert_eq!(
        found("we moved to new zealand last year"),
        vec![("new zealand".into(), PiiType::Location)]
    );
    // Without a cue, or with an ordinary word after it, nothing.
    for text in [
        "i'm so tired today",
        "i am ok with that",
        "i'm fine, thanks",
        "the name is misleading",
        "put it in the oven with the turkey",
        "john smith called",
        "this is great",
        "i'm going to france",
    ] {
        assert!(
            found(text).iter().all(|(s, _)| s == "france"),
            "{text}: {:?}",
            found(text)
        );
    }
}
