"""Applies the selection rule of docs/eval_world/rule.md to evaluations on wild/val.

    python docs/eval_world/choose.py NAME=OUT/metrics.json [NAME=OUT/metrics.json ...] \
        [--norecognition]

Each metrics.json is one `python -m colorize_tf.evaluate` run; every temperature in it
(every "T=..." method) is a candidate "NAME T=...". Prints, per candidate, its PSNR /
rebalanced AuC / colourfulness ratio / cast / recognition and its margins over the
issue's goals, each divided by the goal's size:

    PSNR: (PSNR - (gray - 0.5)) / 0.5      AuC: (AuC - (gray + 0.06)) / 0.06
    recognition: (gap closed - 0.25) / 0.25      cast: (gray / 2 - cast) / (gray / 2)

then the winner: the candidate with colourfulness 0.8-1.2 whose smallest margin is
largest (ties within 0.02 to the higher recognition). --norecognition leaves that
margin out (the screening of decodings).

Where the runs wrote per_photo.csv beside metrics.json (evaluate does since
2026-12-07), a second table compares photo by photo: each candidate against its own
run's gray and against the winner, PSNR, cast and recognition, as mean +- one
standard error of the paired differences over the photos both scored (rebalanced AuC
is pooled over all pixels and has no per-photo value).
"""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
from colorize_tf.evaluation.statistics import (  # noqa: E402
    PER_PHOTO_NAME, paired_difference, read_per_photo)

PSNR_GOAL_DB = 0.5  # PSNR >= gray - 0.5 dB
AUC_GOAL = 0.06  # rebalanced AuC >= gray + 6 points
GAP_GOAL = 0.25  # recognition: a quarter of gray's gap closed
COLOURFULNESS = (0.8, 1.2)
TIE = 0.02


def margins(m, gray, recognition=True):
    """A method's and gray's metrics -> {goal: margin} (module doc)."""
    out = {"psnr": (m["psnr"] - (gray["psnr"] - PSNR_GOAL_DB)) / PSNR_GOAL_DB,
           "auc": (m["auc_rebalanced"] - (gray["auc_rebalanced"] + AUC_GOAL)) / AUC_GOAL,
           "cast": (gray["colour_cast"] / 2 - m["colour_cast"]) / (gray["colour_cast"] / 2)}
    if recognition:
        out["recognition"] = (m["recognition_gap_closed"] - GAP_GOAL) / GAP_GOAL
    return out


def candidates(named_results, recognition=True):
    """{name: metrics.json dict} -> [(candidate name, metrics, margins)]."""
    rows = []
    for name, result in named_results.items():
        gray = result["methods"]["gray"]
        for method, m in result["methods"].items():
            if method.startswith("T="):
                rows.append((f"{name} {method}", m, margins(m, gray, recognition)))
    return rows


def choose(rows):
    """-> the winning row (module doc), or None when none has a fitting colourfulness."""
    fit = [r for r in rows if COLOURFULNESS[0] <= r[1]["colourfulness_ratio"] <= COLOURFULNESS[1]]
    if not fit:
        return None
    best = max(min(r[2].values()) for r in fit)
    tied = [r for r in fit if min(r[2].values()) >= best - TIE]
    return max(tied, key=lambda r: (r[1].get("recognition", 0.0), min(r[2].values())))


def per_photo_scores(paths):
    """{name: metrics.json path} -> {"NAME METHOD": {file: scores}} for the runs whose
    per_photo.csv lies beside their metrics.json (gray as "NAME gray")."""
    out = {}
    for name, path in paths.items():
        csv_path = os.path.join(os.path.dirname(path), PER_PHOTO_NAME)
        if os.path.isfile(csv_path):
            for method, files in read_per_photo(csv_path).items():
                out[f"{name} {method}"] = files
    return out


def paired(a, b, key, scale=1.0):
    """'+d +- se' of a - b (per-photo {file: scores}) on key, times scale."""
    d = paired_difference({f: s[key] for f, s in a.items() if key in s},
                          {f: s[key] for f, s in b.items() if key in s})
    if d["n"] < 2:
        return "-"
    return f"{scale * d['mean']:+.2f} +- {scale * d['standard_error']:.2f}"


def print_paired(rows, winner, scores):
    """The photo-by-photo table (module doc) for the candidates with per-photo scores."""
    rows = [r for r in rows if r[0] in scores]
    if not rows:
        return
    print("\nPhoto by photo (paired differences, mean +- one standard error):\n")
    print("| candidate | photos | PSNR - gray | cast - gray | rec. - gray (points) "
          "| PSNR - winner | cast - winner | rec. - winner (points) |")
    print("|---|---|---|---|---|---|---|---|")
    best = scores.get(winner[0]) if winner else None
    for cand, _, _ in rows:
        mine = scores[cand]
        gray = scores.get(cand.rsplit(" ", 1)[0] + " gray", {})
        cells = [paired(mine, gray, "psnr"), paired(mine, gray, "colour_cast"),
                 paired(mine, gray, "recognised", 100)]
        cells += ([paired(mine, best, "psnr"), paired(mine, best, "colour_cast"),
                   paired(mine, best, "recognised", 100)] if best and cand != winner[0]
                  else ["-"] * 3)
        print(f"| {cand} | {len(mine)} | " + " | ".join(cells) + " |")


def main(argv):
    recognition = "--norecognition" not in argv
    named, paths = {}, {}
    for arg in argv:
        if arg.startswith("--"):
            continue
        name, _, path = arg.partition("=")
        paths[name] = path
        try:
            with open(path) as f:
                named[name] = json.load(f)
        except (OSError, ValueError) as e:
            sys.exit(f"choose.py: {arg}: cannot read an evaluation's metrics.json: {e}")
    rows = candidates(named, recognition)
    print("| candidate | PSNR | AuC r. | col. | cast | rec. (gap) | FD | margins "
          "(PSNR, AuC, cast" + (", rec." if recognition else "") + ") | smallest |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, result in named.items():
        g = result["methods"]["gray"]
        rec = f"{100 * g['recognition']:.1f}%" if "recognition" in g else "-"
        fd = f"{g['fd']:.1f}" if "fd" in g else "-"
        print(f"| {name} gray | {g['psnr']:.2f} | {100 * g['auc_rebalanced']:.1f} | 0 | "
              f"{g['colour_cast']:.1f} | {rec} | {fd} | | |")
    for cand, m, marg in rows:
        rec = (f"{100 * m['recognition']:.1f}% ({m['recognition_gap_closed']:+.2f})"
               if "recognition" in m else "-")
        fd = f"{m['fd']:.1f}" if "fd" in m else "-"
        print(f"| {cand} | {m['psnr']:.2f} | {100 * m['auc_rebalanced']:.1f} | "
              f"{m['colourfulness_ratio']:.2f} | {m['colour_cast']:.1f} | {rec} | {fd} | "
              + ", ".join(f"{v:+.2f}" for v in marg.values())
              + f" | {min(marg.values()):+.2f} |")
    winner = choose(rows)
    print(f"\nwinner: {winner[0] if winner else 'none (no colourfulness within 0.8-1.2)'}")
    print_paired(rows, winner, per_photo_scores(paths))


if __name__ == "__main__":
    main(sys.argv[1:])
