"""Writes the world mix's file list (effnet_general_cpu.flags, stage 8): every photo of
the wild corpus's train split, its class the source's folder (wild_NAME), then the
general set's four domains and the landscapes, at most 2,400 photos each (evenly
spread, as build_records --max_per_class spreads them; the shipped model's mix). The
wild val split is never listed: it is where models are chosen.

    python docs/eval_world/world_mix.py ../data/wild records/world_mix.tsv
"""
import collections
import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, REPO)

from data_prep import builder  # noqa: E402

SHARED = os.path.join(REPO, "..", "shared", "data")
DOMAINS = [(d, os.path.join(SHARED, "general", "train", d))
           for d in ("faces", "objects", "clothing", "street")] + [
    ("landscapes", os.path.join(SHARED, "landscapes", "train"))]
DOMAIN_CAP = 2400

Listed = collections.namedtuple("Listed", "path label_text")


def files_under(folder):
    """Every file under folder, real paths, in C-locale order (as `find | LC_ALL=C sort`)."""
    found = [os.path.join(root, name) for root, _, names in os.walk(os.path.realpath(folder))
             for name in names]
    return sorted(found, key=lambda p: p.encode())


def main(argv):
    if len(argv) != 3:
        sys.exit(__doc__)
    wild, output = argv[1], argv[2]
    train = os.path.join(wild, "train")
    if not os.path.isdir(train):
        sys.exit(f"world_mix: {train!r} is not a folder (build the wild corpus first: "
                 "../shared/data/wild/README.md)")
    rows = [Listed(p, f"wild_{source}") for source in sorted(os.listdir(train))
            for p in files_under(os.path.join(train, source))]
    domains = [Listed(p, name) for name, folder in DOMAINS for p in files_under(folder)]
    capped, left_out = builder.cap_per_class(domains, DOMAIN_CAP)
    rows += capped
    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    with open(output + ".tmp", "w", encoding="utf-8", errors="surrogateescape") as f:
        f.writelines(f"{r.path}\t{r.label_text}\n" for r in rows)
    os.replace(output + ".tmp", output)
    counts = collections.Counter(r.label_text for r in rows)
    print(f"wrote {output}: {len(rows)} photos ({left_out} of the domains' left out by the "
          f"cap of {DOMAIN_CAP}); " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))


if __name__ == "__main__":
    main(sys.argv)
