#!/usr/bin/env bash
# test/bench/ratio_chart.sh <csv> <svg> <title> [<what the bars are> [<what 1x means>]] — draws
# the ratio columns of a bench CSV (header: case,..., then columns named
# <a>_vs_<b>) as a horizontal bar chart in plain SVG: one group of bars per
# row, one bar per ratio, its value written at its end, and a dashed line at
# 1.0x (parity).  Rows without a number in a ratio column draw no bar.  awk only.
set -u
csv=$1 svg=$2 title=$3
what=${4:-"bars: elfsofa's throughput over the other's (CPU, WAL, instructions: the other's per order over elfsofa's);"}
ahead=${5:-"right of the dashed line (1x) elfsofa is ahead"}
awk -F, -v title="$title" -v what="$what" -v ahead="$ahead" '
function esc(s) { gsub(/&/, "\\&amp;", s); gsub(/</, "\\&lt;", s); gsub(/>/, "\\&gt;", s); return s }
NR == 1 {
    for (i = 1; i <= NF; i++) if ($i ~ /_vs_/) { col[++nc] = i; lab = $i; sub(/_vs_/, " vs ", lab); name[nc] = lab }
    next
}
{
    nr++; rcase[nr] = $1
    for (k = 1; k <= nc; k++) { v = $(col[k]) + 0; val[nr, k] = $(col[k]); if (v > max) max = v }
}
END {
    split("#1f77b4 #d62728 #2ca02c #9467bd #ff7f0e", colour, " ")
    if (max < 2.5) max = 2.5
    max = int(max + 0.999)
    left = 260; width = 520; bar = 16; gap = 14
    top = 76; h = top + nr * (nc * bar + gap) + 60
    printf "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" font-family=\"sans-serif\" font-size=\"12\">\n", left + width + 80, h
    printf "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n"
    printf "<text x=\"10\" y=\"22\" font-size=\"15\" font-weight=\"bold\">%s</text>\n", esc(title)
    printf "<text x=\"10\" y=\"40\">%s</text>\n", esc(what)
    printf "<text x=\"10\" y=\"56\">%s</text>\n", esc(ahead)
    y = top
    for (r = 1; r <= nr; r++) {
        gy = y
        for (k = 1; k <= nc; k++) {
            if (val[r, k] !~ /^[0-9.]+$/) { y += bar; continue }
            v = val[r, k] + 0; w = v / max * width
            printf "<rect x=\"%d\" y=\"%d\" width=\"%.1f\" height=\"%d\" fill=\"%s\"/>\n", left, y, w, bar - 2, colour[k]
            printf "<text x=\"%.1f\" y=\"%d\">%s</text>\n", left + w + 4, y + bar - 5, esc(val[r, k] "x")
            y += bar
        }
        printf "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">%s</text>\n", left - 8, gy + (nc * bar) / 2 + 4, esc(rcase[r])
        y += gap
    }
    for (t = 0; t <= max; t++) {
        x = left + t / max * width
        printf "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"%s\"%s/>\n", x, top - 6, x, y, (t == 1 ? "black" : "#ccc"), (t == 1 ? " stroke-dasharray=\"4 3\"" : "")
        printf "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%dx</text>\n", x, y + 14, t
    }
    lx = left
    for (k = 1; k <= nc; k++) {
        printf "<rect x=\"%d\" y=\"%d\" width=\"12\" height=\"12\" fill=\"%s\"/><text x=\"%d\" y=\"%d\">%s</text>\n", lx, y + 26, colour[k], lx + 16, y + 36, esc(name[k])
        lx += 170
    }
    print "</svg>"
}' "$csv" >"$svg"
