package store_test

import (
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/store"
)

// testAuditAppend: an audit entry reads back with every field, the
// credential it was made with included; a nil entry writes nothing.
func testAuditAppend(t *testing.T, s *store.Store) {
	ctx := t.Context()
	a := newAccount(t, s)
	for _, tc := range []struct {
		name  string
		entry gatehouse.AuditEntry
	}{
		{"through an API token", gatehouse.AuditEntry{ActorID: "", Actor: "api token deploy", Action: "user.create",
			TargetType: "user", TargetID: gatehouse.NewID("usr"), CredentialID: gatehouse.NewID("apt"), Credential: "deploy",
			Details: map[string]string{"email": "new@example.com", "roles": "developer"}, RemoteAddr: "192.0.2.1"}},
		{"through a session", gatehouse.AuditEntry{ActorID: gatehouse.NewID("usr"), Actor: "admin@example.com", Action: "settings.update",
			TargetType: "account", TargetID: a.ID, CredentialID: gatehouse.NewID("ses"), Credential: "session",
			RemoteAddr: "[2001:db8::1]:443"}},
		{"with an id", gatehouse.AuditEntry{ID: gatehouse.NewID("aud"), Actor: "system", Action: "account.create"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := tc.entry
			want.AccountID, want.CreatedAt = a.ID, at.Add(time.Second)
			given := want.ID
			update(t, s, func(tx *store.Tx) error {
				if err := tx.Audit(nil); err != nil {
					return err
				}
				return tx.Audit(&want)
			})
			if want.ID == "" || (given != "" && want.ID != given) {
				t.Fatalf("entry id %q (given %q)", want.ID, given)
			}
			es, _, err := s.Audit(ctx, a.ID, gatehouse.Page{Limit: gatehouse.MaxPageSize})
			if err != nil {
				t.Fatal(err)
			}
			i := slices.IndexFunc(es, func(e *gatehouse.AuditEntry) bool { return e.ID == want.ID })
			if i < 0 {
				t.Fatalf("entry %s not listed", want.ID)
			}
			got := es[i]
			if got.AccountID != want.AccountID || got.ActorID != want.ActorID || got.Actor != want.Actor || got.Action != want.Action ||
				got.TargetType != want.TargetType || got.TargetID != want.TargetID || got.CredentialID != want.CredentialID ||
				got.Credential != want.Credential || got.RemoteAddr != want.RemoteAddr || !got.CreatedAt.Equal(want.CreatedAt) ||
				len(got.Details) != len(want.Details) || !maps.Equal(got.Details, want.Details) {
				t.Fatalf("audit entry\n got %+v\nwant %+v", *got, want)
			}
		})
	}
	if es, _, err := s.Audit(ctx, a.ID, gatehouse.Page{}); err != nil || len(es) != 3 {
		t.Fatalf("%d entries, %v; want 3 (a nil entry writes nothing)", len(es), err)
	}
}

// testAuditPaging: an account's audit log lists newest first, page by
// page, without other accounts' entries.
func testAuditPaging(t *testing.T, s *store.Store) {
	ctx := t.Context()
	a, b := newAccount(t, s), newAccount(t, s)
	var newestFirst []string
	for i := range 5 {
		time.Sleep(2 * time.Millisecond) // ids order by the millisecond
		e := &gatehouse.AuditEntry{AccountID: a.ID, Action: "test", TargetID: fmt.Sprint(i), CreatedAt: at}
		update(t, s, func(tx *store.Tx) error {
			if err := tx.Audit(e); err != nil {
				return err
			}
			return tx.Audit(&gatehouse.AuditEntry{AccountID: b.ID, Action: "elsewhere", CreatedAt: at})
		})
		newestFirst = append([]string{e.ID}, newestFirst...)
	}
	got, sizes := pageAll(t, 2, func(p gatehouse.Page) ([]string, string, error) {
		return ids(func(e *gatehouse.AuditEntry) string { return e.ID })(s.Audit(ctx, a.ID, p))
	})
	if !slices.Equal(got, newestFirst) || !slices.Equal(sizes, []int{2, 2, 1}) {
		t.Fatalf("audit %v in pages of %v, want %v in pages of [2 2 1]", got, sizes, newestFirst)
	}
	first, _, err := s.Audit(ctx, a.ID, gatehouse.Page{Limit: 1})
	if err != nil || len(first) != 1 || first[0].TargetID != "4" {
		t.Fatalf("newest entry %+v, %v; want the last appended", first, err)
	}
}

// testAuditFind: the filters match the actor by id or a part of the name,
// actions by their beginning, the target by id or type, and a time range;
// pages run older and back newer.
func testAuditFind(t *testing.T, s *store.Store) {
	ctx := t.Context()
	a := newAccount(t, s)
	entries := []*gatehouse.AuditEntry{
		{ActorID: "usr_1", Actor: "Ann@example.com", Action: "user.create", TargetType: "user", TargetID: "usr_2"},
		{ActorID: "usr_1", Actor: "Ann@example.com", Action: "user.update", TargetType: "user", TargetID: "usr_2"},
		{ActorID: "usr_2", Actor: "bob@example.com", Action: "credential.create", TargetType: "credential", TargetID: "crd_1"},
		{ActorID: "usr_2", Actor: "bob@example.com", Action: "credential.delete", TargetType: "credential", TargetID: "crd_1"},
		{ActorID: "atk_1", Actor: "api_token:atk_1", Action: "settings.update", TargetType: "account", TargetID: a.ID},
	}
	for i, e := range entries {
		time.Sleep(2 * time.Millisecond) // ids order by the millisecond
		e.AccountID, e.CreatedAt = a.ID, at.Add(time.Duration(i)*time.Hour)
		update(t, s, func(tx *store.Tx) error { return tx.Audit(e) })
	}
	find := func(t *testing.T, f gatehouse.AuditFilter, p gatehouse.Page) ([]int, gatehouse.Cursors) {
		t.Helper()
		es, c, err := s.FindAudit(ctx, a.ID, f, p)
		if err != nil {
			t.Fatal(err)
		}
		var idx []int
		for _, e := range es {
			idx = append(idx, slices.IndexFunc(entries, func(x *gatehouse.AuditEntry) bool { return x.ID == e.ID }))
		}
		return idx, c
	}
	for _, tc := range []struct {
		name string
		f    gatehouse.AuditFilter
		want []int
	}{
		{"all", gatehouse.AuditFilter{}, []int{4, 3, 2, 1, 0}},
		{"actor id", gatehouse.AuditFilter{Actor: "usr_2"}, []int{3, 2}},
		{"actor name part", gatehouse.AuditFilter{Actor: "ANN@"}, []int{1, 0}},
		{"action prefix", gatehouse.AuditFilter{Action: "credential."}, []int{3, 2}},
		{"action exact", gatehouse.AuditFilter{Action: "user.update"}, []int{1}},
		{"action wildcard is literal", gatehouse.AuditFilter{Action: "%"}, nil},
		{"target id", gatehouse.AuditFilter{Target: "usr_2"}, []int{1, 0}},
		{"target type", gatehouse.AuditFilter{Target: "account"}, []int{4}},
		{"time range", gatehouse.AuditFilter{Since: at.Add(time.Hour), Until: at.Add(3 * time.Hour)}, []int{2, 1}},
		{"combined", gatehouse.AuditFilter{Actor: "usr_2", Action: "credential.delete", Target: "crd_1"}, []int{3}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got, _ := find(t, tc.f, gatehouse.Page{}); !slices.Equal(got, tc.want) {
				t.Fatalf("found %v, want %v", got, tc.want)
			}
		})
	}
	t.Run("older and back newer", func(t *testing.T) {
		first, c1 := find(t, gatehouse.AuditFilter{}, gatehouse.Page{Limit: 2})
		older, c2 := find(t, gatehouse.AuditFilter{}, gatehouse.Page{Limit: 2, After: c1.Next})
		newer, c3 := find(t, gatehouse.AuditFilter{}, gatehouse.Page{Limit: 2, Before: c2.Prev})
		if !slices.Equal(first, []int{4, 3}) || c1.Prev != "" || !slices.Equal(older, []int{2, 1}) || c2.Prev == "" ||
			!slices.Equal(newer, []int{4, 3}) || c3.Prev != "" || c3.Next != c1.Next {
			t.Fatalf("pages %v %+v, %v %+v, %v %+v", first, c1, older, c2, newer, c3)
		}
	})
}
