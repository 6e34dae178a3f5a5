package admin

import (
	"net/url"
	"strings"
	"testing"
)

// FuzzParseAuditQuery: any query string gives a query or ErrBadRequest,
// never a panic, and a query within the bounds.
func FuzzParseAuditQuery(f *testing.F) {
	for _, s := range []string{"", "person=ad:1&outcome=failure", "since=2026-11-30&until=2026-11-30T18:00",
		"addr=10.1.0.0/16", "addr=::ffff:10.0.0.0/104", "after=-1", "since=yesterday", "outcome=maybe", "after=99999999999999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		v, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		q, err := parseAuditQuery(v)
		if err != nil {
			if err != ErrBadRequest {
				t.Fatalf("error %v is not ErrBadRequest", err)
			}
			return
		}
		if q.AfterID < 0 || (q.Outcome != "" && q.Outcome != "success" && q.Outcome != "failure") || len(q.Person) > 256 {
			t.Fatalf("accepted an out-of-bounds query %+v", q)
		}
	})
}

// FuzzLocalPath: a return target accepted after sign-in is always a
// console path on this origin.
func FuzzLocalPath(f *testing.F) {
	for _, s := range []string{"/admin", "/admin/sessions?q=x", "//evil.example/admin", "/admin@evil", "/adminx", "https://evil/admin", "/admin/\\evil", "/admin\r\nX: y"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		if !localPath(p) {
			return
		}
		u, err := url.Parse(p)
		if err != nil || u.Host != "" || u.Scheme != "" || !strings.HasPrefix(u.Path, PathHome) {
			t.Fatalf("accepted %q (parsed %+v, %v)", p, u, err)
		}
	})
}

func TestLocalPath(t *testing.T) {
	for p, want := range map[string]bool{"/admin": true, "/admin/audit?type=x": true, "/admin?x=1": true,
		"//evil.example": false, "/adminx": false, "https://evil/admin": false, "/admin/\\evil": false, "": false} {
		if got := localPath(p); got != want {
			t.Errorf("localPath(%q) = %v, want %v", p, got, want)
		}
	}
}

func TestCan(t *testing.T) {
	if Can(nil, PermConsole) || Can([]Role{RoleAuditor}, PermSessions) || Can([]Role{RoleHelpdesk}, PermAudit) ||
		Can([]Role{RoleHelpdesk, RoleAuditor}, PermEmergencyReview) || !Can([]Role{RoleHelpdesk, RoleAuditor}, PermAudit) ||
		!Can([]Role{RoleAdmin}, PermApps) || Can([]Role{"root"}, PermConsole) {
		t.Fatal("the role model is not the documented one")
	}
}
