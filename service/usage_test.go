package service_test

import (
	"context"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/service"
	"github.com/gatehouse/gatehouse/store"
)

// TestUsageRecord: each request counts once under its day, user and
// credential with its outcome; the day turns at UTC midnight (and back,
// should the clock step back); admin UI sessions are not counted; counts a
// failed flush could not write are kept for the next.
func TestUsageRecord(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "g.db")
	st, err := store.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	ann := &gatehouse.User{ID: "usr_ann"}
	cc := &gatehouse.Principal{AccountID: "acc", User: ann, Method: gatehouse.MethodClientCredentials, ClientID: "gci_1", CredentialID: "tok_1"}
	actAs := &gatehouse.Principal{AccountID: "acc", User: ann, Method: gatehouse.MethodAPIToken, CredentialID: "atk_1"}
	anon := &gatehouse.Principal{AccountID: "acc", Method: gatehouse.MethodAPIToken, CredentialID: "atk_1"}
	session := &gatehouse.Principal{AccountID: "acc", User: ann, Method: gatehouse.MethodSession, CredentialID: "ses_1"}
	late := time.Date(2026, 3, 1, 23, 59, 59, 0, time.UTC)
	next := late.Add(2 * time.Second)

	u := service.NewUsage()
	u.Record(cc, service.Served, late)
	u.Record(cc, service.Unauthorized, next)
	u.Record(cc, service.Served, late) // the clock stepped back
	u.Record(actAs, service.Forbidden, next)
	u.Record(anon, service.Limited, next)
	u.Record(anon, service.Served, next)
	u.Record(session, service.Served, next)
	u.Record(nil, service.Served, next)

	st.Close() // the first flush fails…
	if err := u.Flush(ctx, st); err == nil {
		t.Fatal("flush to a closed store succeeded")
	}
	if st, err = store.Open(ctx, path); err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := u.Flush(ctx, st); err != nil { // …and the next writes it all
		t.Fatal(err)
	}
	got, err := st.Usage(ctx, "acc", "2026-03-01")
	if err != nil {
		t.Fatal(err)
	}
	want := []store.UsageRow{
		{Day: "2026-03-01", UserID: "usr_ann", Credential: "client_credentials:gci_1", UsageCounts: store.UsageCounts{Served: 2}},
		{Day: "2026-03-02", UserID: "", Credential: "api_token:atk_1", UsageCounts: store.UsageCounts{Served: 1, Limited: 1}},
		{Day: "2026-03-02", UserID: "usr_ann", Credential: "api_token:atk_1", UsageCounts: store.UsageCounts{Forbidden: 1}},
		{Day: "2026-03-02", UserID: "usr_ann", Credential: "client_credentials:gci_1", UsageCounts: store.UsageCounts{Unauthorized: 1}},
	}
	if !slices.Equal(got, want) {
		t.Fatalf("usage\n%+v\nwant\n%+v", got, want)
	}
}
