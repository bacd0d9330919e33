package admin

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/service"
)

// auditPerPage is the size of a page of the audit log.
const auditPerPage = 50

// auditActions are the beginnings of actions the filter suggests.
var auditActions = []string{"user.", "developer.", "credential.", "api_access.", "api_token.", "extension.", "settings.",
	"workspace.", "account."}

// auditQuery reads the audit log's filter form.
func auditQuery(r *http.Request) service.AuditQuery {
	q := r.URL.Query()
	return service.AuditQuery{Actor: q.Get("actor"), Action: q.Get("action"), Target: q.Get("target"), From: q.Get("from"), To: q.Get("to")}
}

// auditRow is an entry of the audit log as the page shows it.
type auditRow struct {
	*gatehouse.AuditEntry
	Details []string
}

func (u *UI) audit(w http.ResponseWriter, r *http.Request, pg page) error {
	q := auditQuery(r)
	p := listPage(r, auditPerPage)
	entries, c, err := u.svc.Audit(r.Context(), pg.P, q, p)
	status := http.StatusOK
	if refusable(err) {
		pg.Form = &form{name: "filter", values: r.URL.Query()}
		pg.Form.field, pg.Form.msg = gatehouse.ErrorField(err)
		status, entries, c, err = http.StatusBadRequest, nil, gatehouse.Cursors{}, nil
	}
	if err != nil {
		return err
	}
	rows := make([]auditRow, len(entries))
	for i, e := range entries {
		rows[i] = auditRow{e, readableDetails(e.Details)}
	}
	filter := url.Values{}
	for k, v := range map[string]string{"actor": q.Actor, "action": q.Action, "target": q.Target, "from": q.From, "to": q.To} {
		if v != "" {
			filter.Set(k, v)
		}
	}
	export := func(format string) string {
		v := url.Values{"format": {format}}
		for k, vs := range filter {
			v[k] = vs
		}
		return u.path("/admin/audit/export?" + v.Encode())
	}
	pg.Title, pg.Page = "Audit log", "audit"
	u.render(w, status, "audit", struct {
		page
		Query               service.AuditQuery
		Filtering           bool
		Actions             []string
		Entries             []auditRow
		Pager               pager
		ExportCSV, ExportJL string
	}{pg, q, len(filter) > 0, auditActions, rows, u.newPager("/admin/audit", r.URL.Query(), p, c), export("csv"), export("jsonl")})
	return nil
}

// readableDetails writes an entry's details as "key: value" lines, in key
// order; a value that holds a JSON object (a settings change) is spelled
// out one setting per line.
func readableDetails(d map[string]string) []string {
	var out []string
	for k, v := range d {
		var obj map[string]any
		if strings.HasPrefix(v, "{") && json.Unmarshal([]byte(v), &obj) == nil {
			flatten("", obj, &out)
			continue
		}
		if v == "" {
			v = "none"
		}
		out = append(out, k+": "+v)
	}
	slices.Sort(out)
	return out
}

// flatten writes the leaves of a JSON object as "a.b: value", leaving out
// nulls (what a change did not touch).
func flatten(prefix string, obj map[string]any, out *[]string) {
	for k, v := range obj {
		switch x := v.(type) {
		case nil:
		case map[string]any:
			flatten(prefix+k+".", x, out)
		case []any:
			parts := make([]string, len(x))
			for i, p := range x {
				parts[i] = fmt.Sprint(p)
			}
			if len(parts) == 0 {
				parts = []string{"none"}
			}
			*out = append(*out, prefix+k+": "+strings.Join(parts, " "))
		case float64:
			*out = append(*out, prefix+k+": "+strconv.FormatFloat(x, 'f', -1, 64))
		default:
			*out = append(*out, fmt.Sprintf("%s%s: %v", prefix, k, x))
		}
	}
}

// exportAudit writes the filtered audit log as CSV or JSON lines.
func (u *UI) exportAudit(w http.ResponseWriter, r *http.Request, pg page) error {
	q := auditQuery(r)
	if err := service.RequireAdmin(pg.P); err != nil {
		return err
	}
	if _, err := q.Filter(); err != nil {
		return err
	}
	name := "audit-" + time.Now().UTC().Format("20060102-150405")
	ctx := r.Context()
	switch r.URL.Query().Get("format") {
	case "jsonl":
		w.Header().Set("Content-Type", "application/jsonl; charset=utf-8")
		w.Header().Set("Content-Disposition", `attachment; filename="`+name+`.jsonl"`)
		enc := json.NewEncoder(w)
		return u.exported(u.svc.AuditExport(ctx, pg.P, q, func(e *gatehouse.AuditEntry) error { return enc.Encode(e) }))
	case "csv":
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		w.Header().Set("Content-Disposition", `attachment; filename="`+name+`.csv"`)
		cw := csv.NewWriter(w)
		cw.Write([]string{"time", "actor", "actor_id", "credential", "action", "target_type", "target_id", "details", "remote_addr", "id"})
		err := u.svc.AuditExport(ctx, pg.P, q, func(e *gatehouse.AuditEntry) error {
			row := []string{e.CreatedAt.UTC().Format(time.RFC3339), e.Actor, e.ActorID, e.Credential, e.Action, e.TargetType, e.TargetID,
				strings.Join(readableDetails(e.Details), "; "), e.RemoteAddr, e.ID}
			for i, v := range row {
				row[i] = cellSafe(v)
			}
			return cw.Write(row)
		})
		cw.Flush()
		return u.exported(err)
	}
	return gatehouse.Invalid("format must be csv or jsonl")
}

// exported logs an export that failed after its first bytes were sent:
// the answer cannot become an error page any more.
func (u *UI) exported(err error) error {
	if err != nil {
		u.logger.Error("audit export failed", "err", err)
	}
	return nil
}

// cellSafe keeps a spreadsheet from reading a CSV cell as a formula.
func cellSafe(v string) string {
	if v != "" && strings.ContainsRune("=+-@\t\r", rune(v[0])) {
		return "'" + v
	}
	return v
}
