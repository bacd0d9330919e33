package admin

import (
	"fmt"
	"html/template"
	"net/http"
	"strings"

	"github.com/gatehouse/gatehouse/service"
)

var palette = []string{"#2b59c3", "#e8710a", "#1a7f37", "#b42318", "#8250df", "#0e7490", "#a16207", "#be185d"}

// chartSeries is how many users the usage chart draws apart; the rest
// share one bar segment.
const chartSeries = 7

type series struct {
	Label, Color string
}

func (u *UI) usage(w http.ResponseWriter, r *http.Request, pg page) error {
	rep, err := u.svc.AccountUsage(r.Context(), pg.P, 14)
	if err != nil {
		return err
	}
	drawn := rep.ByUser
	if len(drawn) > chartSeries {
		rest := service.DailyUsage{Label: fmt.Sprintf("%d others", len(drawn)-chartSeries), Days: map[string]int64{}}
		for _, d := range drawn[chartSeries:] {
			for day, n := range d.Days {
				rest.Days[day] += n
			}
		}
		drawn = append(drawn[:chartSeries:chartSeries], rest)
	}
	var legend []series
	for i, s := range drawn {
		legend = append(legend, series{s.Label, palette[i%len(palette)]})
	}
	pg.Title, pg.Page = "Usage", "usage"
	u.render(w, http.StatusOK, "usage", struct {
		page
		Dates  []string
		Legend []series
		Chart  template.HTML
		*service.UsageReport
	}{pg, rep.Dates, legend, chart(rep.Dates, drawn), rep})
	return nil
}

// chart draws stacked bars of requests per day as SVG. Every value in it is
// a number or a date the server made, so it is safe as HTML.
func chart(dates []string, rows []service.DailyUsage) template.HTML {
	const width, height, pad = 700, 220, 30
	var max int64 = 1
	for _, d := range dates {
		var sum int64
		for _, s := range rows {
			sum += s.Days[d]
		}
		if sum > max {
			max = sum
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart" viewBox="0 0 %d %d" width="100%%" role="img" aria-label="Requests per day">`, width, height+pad)
	bw := (width - pad) / len(dates)
	for i, d := range dates {
		x := pad + i*bw
		y := height
		for j, s := range rows {
			n := s.Days[d]
			if n == 0 {
				continue
			}
			h := int(int64(height-pad) * n / max)
			y -= h
			fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="%d" fill="%s"><title>%s: %d</title></rect>`,
				x+2, y, bw-4, h, palette[j%len(palette)], template.HTMLEscapeString(s.Label), n)
		}
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle">%s</text>`, x+bw/2, height+16, d[5:])
	}
	fmt.Fprintf(&b, `<text x="0" y="%d">%d</text><line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#d9dee7"/>`, pad, max, pad, height, width, height)
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}
