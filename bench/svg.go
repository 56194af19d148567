package main

import (
	"fmt"
	"html"
	"strings"
)

// The chart: one panel per measure, horizontal bars with min–max whiskers.
type bar struct {
	label  string
	vals   []float64 // stacked segments
	lo, hi float64   // whisker of the total (0, 0: none)
	text   string    // after the bar; default: the total and the unit
}

type panel struct {
	title, unit string
	legend      []string
	bars        []bar
}

var colors = []string{"#3b6ea8", "#e08a2c", "#6aa84f"}

const (
	svgWidth  = 760
	labelW    = 130
	barH      = 16
	panelGap  = 24
	plotRight = 150
)

func (rep *report) svg() string {
	var panels []panel
	cpu := panel{title: "Relays' CPU per GiB (median; whisker min–max)", unit: "s", legend: []string{"client", "server"}}
	tp := panel{title: "Bulk throughput (median of rounds, whisker min–max)", unit: "MB/s", legend: []string{"upload", "download"}}
	lat := panel{title: "Round-trip latency of 64 bytes, p50 (whisker: p99)", unit: "µs", legend: []string{"p50"}}
	mem := panel{title: "Memory per idle tunnel (RSS)", unit: "KiB", legend: []string{"client", "server"}}
	for _, r := range rep.results {
		if len(r.cpuC) > 0 {
			c, s, t := stat(r.cpuC).med, stat(r.cpuS).med, stat(r.cpu())
			cpu.bars = append(cpu.bars, bar{r.v.String(), []float64{c, s}, t.lo, t.hi, fmt.Sprintf("%.2f + %.2f s", c, s)})
		}
		u, d := stat(r.up), stat(r.down)
		tp.bars = append(tp.bars, bar{r.v.String() + " ↑", []float64{u.med, 0}, u.lo, u.hi, ""},
			bar{r.v.String() + " ↓", []float64{0, d.med}, d.lo, d.hi, ""})
		if len(r.p50) > 0 {
			p50, p99 := stat(r.p50).med, stat(r.p99).med
			lat.bars = append(lat.bars, bar{r.v.String(), []float64{p50}, 0, p99, fmt.Sprintf("p50 %.0f µs, p99 %.0f µs", p50, p99)})
		}
		if len(r.rssClient) > 0 {
			c, s := stat(r.rssClient).med/1024, stat(r.rssServer).med/1024
			mem.bars = append(mem.bars, bar{r.v.String(), []float64{c, s}, 0, 0, fmt.Sprintf("%.1f + %.1f = %.1f KiB", c, s, c+s)})
		}
	}
	panels = append(panels, cpu, tp, lat, mem)

	var b strings.Builder
	y := 10
	for _, p := range panels {
		if len(p.bars) > 0 {
			y = p.draw(&b, y) + panelGap
		}
	}
	return fmt.Sprintf(`<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">
<rect width="100%%" height="100%%" fill="white"/>
%s</svg>
`, svgWidth, y, b.String())
}

// draw writes the panel at y and returns the y below it.
func (p panel) draw(b *strings.Builder, y int) int {
	max := 0.0
	for _, r := range p.bars {
		t := 0.0
		for _, v := range r.vals {
			t += v
		}
		max = maxf(max, maxf(t, r.hi))
	}
	if max == 0 {
		max = 1
	}
	plotW := float64(svgWidth - labelW - plotRight)
	x := func(v float64) float64 { return labelW + v/max*plotW }
	fmt.Fprintf(b, "<text x=\"4\" y=\"%d\" font-weight=\"bold\">%s</text>\n", y+12, html.EscapeString(p.title))
	lx := svgWidth - plotRight - 60*len(p.legend)
	for i, l := range p.legend {
		fmt.Fprintf(b, "<rect x=\"%d\" y=\"%d\" width=\"10\" height=\"10\" fill=\"%s\"/><text x=\"%d\" y=\"%d\">%s</text>\n",
			lx+60*i, y+3, colors[i], lx+60*i+14, y+12, html.EscapeString(l))
	}
	y += 22
	for _, r := range p.bars {
		fmt.Fprintf(b, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">%s</text>\n", labelW-6, y+barH-4, html.EscapeString(r.label))
		at, total := 0.0, 0.0
		for i, v := range r.vals {
			if v > 0 {
				fmt.Fprintf(b, "<rect x=\"%.1f\" y=\"%d\" width=\"%.1f\" height=\"%d\" fill=\"%s\"/>\n", x(at), y, x(at+v)-x(at), barH, colors[i])
			}
			at += v
			total += v
		}
		if r.hi > 0 {
			lo := r.lo
			if lo == 0 {
				lo = total
			}
			fmt.Fprintf(b, "<path d=\"M%.1f %dH%.1fM%.1f %dv8M%.1f %dv8\" stroke=\"black\"/>\n",
				x(lo), y+barH/2, x(r.hi), x(lo), y+barH/2-4, x(r.hi), y+barH/2-4)
		}
		text := r.text
		if text == "" {
			text = num(total) + " " + p.unit
		}
		fmt.Fprintf(b, "<text x=\"%.1f\" y=\"%d\">%s</text>\n", x(maxf(total, r.hi))+6, y+barH-4, html.EscapeString(text))
		y += barH + 4
	}
	fmt.Fprintf(b, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#888\"/>\n", labelW, y-len(p.bars)*(barH+4)-2, labelW, y)
	return y
}

func num(v float64) string {
	if v >= 100 {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.1f", v)
}

func maxf(a, b float64) float64 {
	if a > b {
		return a
	}
	return b
}
