//! Lexicon rules for content categories.
//!
//! Topic-mention rules (`*.mention`) carry no hand-set boost: a suicide-prevention hotline or
//! a sex-education class mentions the topic without being harmful, so only the learned
//! weight of the mention (the rule id is a model feature) counts.
//!
//! A model trained on about a thousand labelled texts has seen few slurs, few explicit threats
//! and no weapon recipes at all; these rules add what a moderator would call obvious. Each rule
//! adds to its category's logit and sets a floor on its score. Patterns prefer first-person
//! intent and how-to requests ("how do I make a pipe bomb", "I am going to kill you") over bare
//! topic words, so that news, history and safety questions ("what is the history of the atomic
//! bomb") stay below the thresholds.
//!
//! Matching runs over normalised bytes with Unicode disabled (one lazy DFA, linear time).

use std::sync::LazyLock;

use regex::bytes::{Regex, RegexBuilder, RegexSet, RegexSetBuilder};

use super::Category;

/// One lexicon rule.
#[derive(Debug, Clone, Copy)]
pub struct LexiconRule {
    /// Stable id, e.g. `self_harm.intent`.
    pub id: &'static str,
    /// The category it raises.
    pub category: Category,
    /// Added to the category's logit.
    pub boost: f32,
    /// Lower bound on the category's score.
    pub floor: f32,
    pattern: &'static str,
}

const fn lex(
    id: &'static str,
    category: Category,
    boost: f32,
    floor: f32,
    pattern: &'static str,
) -> LexiconRule {
    LexiconRule {
        id,
        category,
        boost,
        floor,
        pattern,
    }
}

const GROUPS: &str = r"(?:jews?|jewish\s+people|muslims?|islam|christians?|blacks?|black\s+people|whites?|white\s+people|asians?|gays?|lesbians?|homosexuals?|queers?|trans(?:gender)?\s+people|trannies|immigrants?|migrants?|refugees?|mexicans?|arabs?|africans?|indians?|chinese|hispanics?|latinos?|women|females|disabled\s+people|gypsies|roma)";

const RULES: &[LexiconRule] = &[
    lex(
        "hate.slur",
        Category::Hate,
        3.0,
        0.75,
        r"\b(?:nigg(?:er|a|ah|az|ers|as)|faggots?|fags|kikes?|spics?|chinks?|wetbacks?|ragheads?|towelheads?|trann(?:y|ies)|gooks?|coons?|sand\s*niggers?|beaners?|pakis?|darkies|jungle\s+bunn(?:y|ies)|porch\s+monkeys?|zipperheads?|shemales?|mongoloids?)\b",
    ),
    lex(
        "hate.dehumanize",
        Category::Hate,
        3.0,
        0.75,
        r"\b{GROUPS}\s+(?:are|is|r)\s+(?:all\s+|just\s+|nothing\s+but\s+)?(?:animals|vermin|parasites|subhuman|sub-human|inferior|cockroaches|rats|a\s+disease|a\s+cancer|scum|filth|savages|apes|monkeys|pigs|dogs|evil|the\s+enemy|a\s+plague|trash|garbage)\b",
    ),
    lex(
        "hate.exterminate",
        Category::Hate,
        3.0,
        0.8,
        r"\b(?:kill|exterminate|gas|eradicate|eliminate|wipe\s+out|get\s+rid\s+of|deport|hang|lynch|shoot)\s+(?:all\s+(?:the\s+|of\s+the\s+)?|every\s+(?:single\s+)?|the\s+)?{GROUPS}\b",
    ),
    lex(
        "hate.conspiracy",
        Category::Hate,
        2.5,
        0.6,
        r"\b(?:the\s+)?(?:jews?|jewish\s+(?:people|elites?|bankers?)|zionists?)\s+(?:who\s+)?(?:control|controls|run|runs|own|owns|rule|rules)\b|\bholocaust\s+(?:is|was)\s+(?:a\s+|an?\s+)?(?:hoax|lie|myth|fraud|exaggerat\w*|fake)|\bholocaust\s+(?:never\s+happened|denial\s+is\s+(?:right|true))|\b(?:jewish|muslim|black|immigrant|gay)\s+(?:problem|question|plague|invasion|vermin)\b|\b(?:white|great)\s+replacement\b|\brace\s+(?:traitors?|mixing)\b",
    ),
    lex(
        "hate.group_hostility",
        Category::Hate,
        1.5,
        0.0,
        r"\b(?:i\s+hate|hate\s+all|death\s+to|down\s+with|sick\s+of)\s+(?:all\s+|the\s+|these\s+)?{GROUPS}\b",
    ),
    lex(
        "harassment.insult",
        Category::Harassment,
        2.5,
        0.6,
        r"\b(?:you(?:'re|\s+are|\s+r|r)?|ur|u)\s+(?:such\s+)?(?:an?\s+)?(?:fucking\s+|stupid\s+|dumb\s+|little\s+|pathetic\s+|worthless\s+|ugly\s+|fat\s+)*(?:idiot|moron|retard|loser|bitch|cunt|whore|slut|piece\s+of\s+(?:shit|garbage|trash)|asshole|dickhead|dick|prick|scumbag|pathetic|worthless|ugly|disgusting|imbecile|dumbass|jackass|twat|wanker|bastard|clown|trash|garbage|pig|freak|stupid|dumb|retarded|coward)\b",
    ),
    lex(
        "harassment.attack",
        Category::Harassment,
        2.5,
        0.6,
        r"\b(?:fuck\s+(?:you|off|u|yourself|him|her|them)|go\s+(?:to\s+hell|die|fuck\s+yourself)|shut\s+(?:the\s+fuck\s+)?up|stfu|kys|kill\s+yourself|nobody\s+(?:likes|loves|cares\s+about)\s+you|drop\s+dead|eat\s+shit)\b",
    ),
    lex(
        "harassment.insult_word",
        Category::Harassment,
        1.2,
        0.0,
        r"\b(?:idiots?|morons?|stupid|dumbass(?:es)?|assholes?|bitch(?:es|y)?|bastards?|cunts?|pricks?|twats?|wankers?|scumbags?|douche(?:bag)?s?|losers?|imbeciles?|retard(?:s|ed)?|shitheads?|jackass(?:es)?|dipshits?|clowns?|hypocrites?|liars?|pathetic|disgusting|traitors?|scum|creeps?|thugs?|crooks?|buffoons?|fools?|ignorant|lunatics?|senile|lowlife|sleazy|degenerates?|parasites?)\b",
    ),
    lex(
        "harassment.profanity",
        Category::Harassment,
        0.8,
        0.0,
        r"\b(?:fuck(?:ing|ed|er|ers|s)?|f\*+k|shit(?:ty|s)?|bullshit|crap|damn(?:ed)?|hell|piss(?:ed)?|screw\s+(?:you|them)|sucks?)\b",
    ),
    lex(
        "self_harm.intent",
        Category::SelfHarm,
        3.5,
        0.85,
        r"\b(?:i\s+(?:want|wanna|am\s+going|'m\s+going|m\s+going|plan|intend|need|am\s+ready|'m\s+ready|will|'ll)\s+(?:to\s+)?(?:kill\s+myself|die|end\s+(?:it\s+all|my\s+life|everything)|commit\s+suicide|hurt\s+myself|cut\s+myself|not\s+wake\s+up|disappear\s+forever)|(?:kill(?:ing)?|hurt(?:ing)?|cut(?:ting)?|harm(?:ing)?|starv(?:e|ing)|burn(?:ing)?)\s+myself|i\s+(?:am|'m|feel)\s+suicidal|end(?:ing)?\s+my\s+(?:own\s+)?life|take\s+my\s+(?:own\s+)?life|slit(?:ting)?\s+my\s+wrists?|(?:my|i)\s+(?:self[- ]?harm|relapsed))\b",
    ),
    lex(
        "self_harm.method",
        Category::SelfHarm,
        3.5,
        0.85,
        r"\b(?:how\s+(?:to|do\s+i|can\s+i|should\s+i)\s+(?:kill\s+myself|commit\s+suicide|overdose|hang\s+myself|cut\s+(?:myself|deeper)|end\s+my\s+life)|(?:painless|easiest|quickest|best|surest)\s+(?:way|method|methods|ways)\s+to\s+(?:die|kill\s+(?:myself|yourself)|commit\s+suicide|end\s+(?:it|my\s+life))|how\s+many\s+\w+\s+(?:pills|tablets|mg)\s+(?:to|would|does\s+it\s+take\s+to)\s+(?:die|kill|overdose))\b",
    ),
    lex(
        "self_harm.mention",
        Category::SelfHarm,
        0.0,
        0.0,
        r"\b(?:suicid\w*|self[- ]?harm\w*|self[- ]?injur\w*|cutting|overdos\w*|anorexi\w*|bulimi\w*|pro[- ]?ana|thinspo\w*)\b",
    ),
    lex(
        "sexual.explicit",
        Category::Sexual,
        3.0,
        0.7,
        r"\b(?:blow\s?jobs?|cum(?:ming|shot|s)?|cocks?|puss(?:y|ies)|tits|titties|boobs|dildos?|clit(?:oris)?|orgasm\w*|masturbat\w*|handjobs?|fingering|deepthroat\w*|creampie|gangbang\w*|hentai|horny|jerk(?:ing)?\s+off|suck(?:ing|ed)?\s+(?:my|his|her)\s+(?:dick|cock|tits|breasts?)|fuck(?:ing|ed)?\s+(?:me|her|him|my|his)\s+(?:hard|pussy|ass|brains)|erect\s+(?:penis|cock)|wet\s+pussy|naked\s+(?:body|bodies|pics?|photos?)|nudes|sex\s+tape|porn\w*|xxx|nsfw)\b",
    ),
    lex(
        "sexual.mention",
        Category::Sexual,
        0.0,
        0.0,
        r"\b(?:sex(?:ual(?:ly)?)?|sexy|naked|nude|erotic\w*|penis|vagina|genitals?|breasts?|nipples?|aroused|arousal|lingerie|stripper|strip\s+club|fetish\w*|kinky|bdsm|intercourse|foreplay|seduc\w*|lust\w*|slutty|threesome)\b",
    ),
    lex(
        "sexual_minors.explicit",
        Category::SexualMinors,
        5.0,
        0.95,
        r"\b(?:child\s+porn\w*|kiddie\s+porn|cp\s+(?:links?|videos?|pics?)|p(?:a)?edophil\w*|loli(?:con)?|shotacon|underage\s+(?:sex|porn\w*|nudes?|girls?\s+naked|boys?\s+naked)|jailbait|preteen\s+(?:sex|nudes?|porn\w*)|sex\s+with\s+(?:a\s+)?(?:child|children|kids?|minors?|(?:[1-9]|1[0-5])[\s-]*(?:year|yr)s?[\s-]*old))\b",
    ),
    lex(
        "violence.threat",
        Category::Violence,
        3.5,
        0.85,
        r"\b(?:i(?:'m|\s+am|\s+will|'ll|\s+want\s+to|\s+wanna|\s+am\s+going\s+to|'m\s+going\s+to|'m\s+gonna|\s+gonna|\s+swear\s+i(?:'ll|\s+will))|we(?:'ll|\s+will|\s+are\s+going\s+to|'re\s+gonna)|(?:i'm|i\s+am|we're|we\s+are)\s+planning\s+(?:on|to))\s+(?:fucking\s+)?(?:break(?:ing)?\s+(?:her|his|their|your)\s+(?:legs?|arms?|neck|face)|kill|murder|shoot|stab|strangle|behead|hunt\s+down|beat\s+(?:the\s+shit\s+out\s+of|up)|burn|bomb|rape|slit\s+(?:your|his|her)\s+throat|break\s+(?:your|his|her)\s+(?:neck|legs))\s+(?:you|u|him|her|them|everyone|every|all|my|your|his|the)\b",
    ),
    lex(
        "violence.incite",
        Category::Violence,
        2.5,
        0.6,
        r"\b(?:should|must|ought\s+to|deserves?\s+to|need\s+to|needs\s+to)\s+(?:all\s+)?(?:be\s+)?(?:killed|shot|hanged|hung|lynched|murdered|executed|beheaded|burned\s+alive|tortured|raped|die|burn\s+in\s+hell|be\s+put\s+down)\b",
    ),
    lex(
        "violence.graphic",
        Category::Violence,
        1.5,
        0.0,
        r"\b(?:behead\w*|decapitat\w*|dismember\w*|disembowel\w*|mutilat\w*|gore|bloodbath|massacr\w*|slaughter\w*|tortur\w*|stabbed|stabbing|shot\s+dead|brains\s+out|blood\s+everywhere|entrails|corpses?|murdered|murdering|rape[ds]?|raping|strangl\w*)\b",
    ),
    lex(
        "weapons.explosives_howto",
        Category::WeaponsIllegal,
        6.0,
        0.9,
        r"\b(?:how\s+(?:to|do\s+(?:i|you)|can\s+(?:i|you|one)|would\s+(?:i|you)|could\s+(?:i|you))|steps?\s+to|instructions\s+(?:for|to|on)|recipe\s+for|guide\s+to|teach\s+me\s+to|help\s+me)\s+(?:make|build|assemble|construct|create|manufacture|produce|synthesi[sz]e|cook|making|building|weaponi[sz]e|3d[- ]print)\s+(?:a\s+|an\s+|some\s+|my\s+own\s+|homemade\s+)?(?:pipe\s+|nail\s+|car\s+|fertili[sz]er\s+|pressure[- ]cooker\s+|dirty\s+)?(?:bombs?|explosives?|ieds?|molotov(?:\s+cocktails?)?|napalm|grenades?|detonators?|silencers?|suppressors?|ghost\s+guns?|untraceable\s+(?:guns?|firearms?)|(?:gun|firearm|rifle|pistol)s?|nerve\s+agents?|sarin|vx\s+gas|ricin|anthrax|bio-?weapons?|chemical\s+weapons?|poison\s+gas|thermite|tatp|c-?4|semtex|mustard\s+gas|chlorine\s+gas)\b",
    ),
    lex(
        "illegal.drug_synthesis",
        Category::WeaponsIllegal,
        6.0,
        0.9,
        r"\b(?:how\s+(?:to|do\s+(?:i|you)|can\s+(?:i|you))|steps?\s+to|instructions\s+(?:for|to)|recipe\s+for|teach\s+me\s+to)\s+(?:make|cook|synthesi[sz]e|produce|manufacture|extract|brew)\s+(?:my\s+own\s+|homemade\s+|some\s+)?(?:meth(?:amphetamine)?|crystal\s+meth|heroin|fentanyl|cocaine|crack(?:\s+cocaine)?|lsd|mdma|ecstasy|dmt|ghb|ketamine|pcp|opium|morphine)\b",
    ),
    lex(
        "illegal.crime_howto",
        Category::WeaponsIllegal,
        3.0,
        0.6,
        r"\b(?:how\s+(?:to|do\s+(?:i|you)|can\s+(?:i|you))|best\s+way\s+to|help\s+me|teach\s+me\s+to)\s+(?:launder\s+(?:money|cash)|hotwire\s+(?:a|my|his|her)\s+car|steal\s+(?:a\s+car|cars|credit\s+cards?|someone'?s\s+identity|an?\s+identity|from)|make\s+counterfeit|counterfeit\s+(?:money|bills|cash)|buy\s+(?:a\s+gun|guns|drugs|a\s+firearm)\s+(?:illegally|without\s+a\s+(?:license|background\s+check))|hack\s+into\s+(?:someone|my\s+ex|my\s+(?:wife|husband|girlfriend|boyfriend)|a\s+bank|an?\s+account)|evade\s+(?:taxes|the\s+police)|smuggle\s+(?:drugs|guns|weapons|people)|traffic\s+(?:people|drugs|women|children)|poison\s+(?:someone|my|a\s+person|him|her|them)|get\s+away\s+with\s+murder|kidnap|dispose\s+of\s+a\s+body|convert\s+(?:an?\s+)?(?:ar-?15|rifle|glock|semi-?auto\w*)\s+to\s+(?:full[- ]auto|automatic))\b",
    ),
];

fn expand(p: &str) -> String {
    p.replace("{GROUPS}", GROUPS)
}

static SET: LazyLock<Option<RegexSet>> = LazyLock::new(|| {
    RegexSetBuilder::new(RULES.iter().map(|r| expand(r.pattern)))
        .case_insensitive(true)
        .unicode(false)
        .size_limit(64 << 20)
        .dfa_size_limit(64 << 20)
        .build()
        .ok()
});

/// A reference to a child or minor: combined with sexual content, it is sexual/minors.
static MINOR: LazyLock<Option<Regex>> = LazyLock::new(|| {
    RegexBuilder::new(
        r"\b(?:child|children|kids?|minors?|underage|under-age|teens?|teenagers?|preteens?|pre-teens?|toddlers?|infants?|schoolgirls?|schoolboys?|little\s+(?:girls?|boys?)|young\s+(?:girls?|boys?)|(?:[1-9]|1[0-7])[\s-]*(?:years?|yrs?|y/?o)(?:[\s-]*old)?|step-?daughter|middle\s+school|elementary\s+school|(?:7|8|9)th\s+grade)\b",
    )
    .case_insensitive(true)
    .unicode(false)
    .build()
    .ok()
});

/// The expanded patterns, in [`rules`] order (for the combined scan of
/// [`crate::injection::PreparedText`]).
pub(crate) fn patterns() -> impl Iterator<Item = String> {
    RULES.iter().map(|r| expand(r.pattern))
}

/// Every lexicon rule.
pub fn rules() -> &'static [LexiconRule] {
    RULES
}

/// What the lexicon found in a text.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Hits {
    /// Rule ids that fired, in rule order.
    pub ids: Vec<&'static str>,
    boost: [f32; 7],
    keep: [f32; 7],
}

impl Hits {
    /// Logit boost and score floor for a category.
    pub fn for_category(&self, category: Category) -> (f32, f32) {
        let i = category.index();
        (
            self.boost.get(i).copied().unwrap_or(0.0),
            1.0 - self.keep.get(i).copied().unwrap_or(1.0),
        )
    }

    /// The largest boost of any category, for the overall harmful head.
    pub fn total_boost(&self) -> f32 {
        self.boost.iter().copied().fold(0.0, f32::max)
    }
}

/// Run every lexicon rule over normalised text.
pub fn scan(text: &str) -> Hits {
    match SET.as_ref() {
        Some(set) => hits_from(set.matches(text.as_bytes())),
        None => hits_from(std::iter::empty()),
    }
}

/// The hits of the rules with these indexes (into [`rules`]).
pub fn hits_from(indexes: impl IntoIterator<Item = usize>) -> Hits {
    let mut hits = Hits {
        keep: [1.0; 7],
        ..Hits::default()
    };
    for i in indexes {
        let Some(rule) = RULES.get(i) else { continue };
        hits.ids.push(rule.id);
        let c = rule.category.index();
        if let Some(b) = hits.boost.get_mut(c) {
            *b += rule.boost;
        }
        if let Some(k) = hits.keep.get_mut(c) {
            *k *= 1.0 - rule.floor;
        }
    }
    hits
}

/// Whether the text refers to a child or minor. Separate from [`scan`] because it is only
/// needed when a text is already sexual, which is rare: most texts never pay for it.
pub fn mentions_minor(text: &str) -> bool {
    MINOR.as_ref().is_some_and(|m| m.is_match(text.as_bytes()))
}

/// Whether both regex sets compiled (a unit test guarantees it).
pub fn warm_up() -> bool {
    SET.is_some() && MINOR.is_some()
}
