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
"""
import json
import sys

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


def main(argv):
    recognition = "--norecognition" not in argv
    named = {}
    for arg in argv:
        if arg.startswith("--"):
            continue
        name, _, path = arg.partition("=")
        with open(path) as f:
            named[name] = json.load(f)
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


if __name__ == "__main__":
    main(sys.argv[1:])
