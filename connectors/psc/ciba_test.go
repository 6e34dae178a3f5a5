package psc

import (
	"context"
	"errors"
	"regexp"
	"testing"
	"time"

	"github.com/garde-sso/garde/connectors/psc/psctest"
	"github.com/garde-sso/garde/internal/assurance"
)

func TestDecoupled(t *testing.T) {
	ctx := context.Background()
	for _, method := range []string{AuthClientSecretBasic, AuthClientSecretPost, AuthTLSClientAuth} {
		t.Run(method, func(t *testing.T) {
			e := setup(t, psctest.Config{AuthMethod: method}, func(o *Options) {
				if method == AuthTLSClientAuth {
					o.AuthMethod = AuthClientSecretBasic // replaced below
				}
			})
			if method == AuthTLSClientAuth {
				cert, err := e.sim.ClientCertificate()
				if err != nil {
					t.Fatal(err)
				}
				if e.c, err = New(ctx, Options{Environment: EnvCustom, Issuer: e.sim.Issuer(), ClientID: e.sim.ClientID(),
					AuthMethod: AuthTLSClientAuth, ClientCertificate: &cert, RootCAs: e.sim.RootCAs(), Clock: e.clock.Now}); err != nil {
					t.Fatal(err)
				}
			}
			dc, err := e.c.StartDecoupled(ctx, "500000001815646/CPAT00045", ChannelMobile)
			if err != nil {
				t.Fatal(err)
			}
			if !regexp.MustCompile(`^[0-9]{2}$`).MatchString(dc.BindingMessage) || dc.Interval != time.Second || dc.ExpiresIn != 2*time.Minute {
				t.Errorf("decoupled %+v", dc)
			}
			if got := e.sim.PendingDecoupled()[dc.AuthReqID]; got != dc.BindingMessage {
				t.Errorf("PSC shows %q, Garde %q", got, dc.BindingMessage)
			}
			if _, err := e.c.PollDecoupled(ctx, dc.AuthReqID); !errors.Is(err, ErrAuthorizationPending) || Reason(err) != "psc_pending" {
				t.Fatalf("first poll: %v", err)
			}
			if _, err := e.c.PollDecoupled(ctx, dc.AuthReqID); !errors.Is(err, ErrSlowDown) {
				t.Fatalf("poll within the interval: %v", err)
			}
			e.clock.Advance(dc.Interval)
			if err := e.sim.ApproveDecoupled(dc.AuthReqID); err != nil {
				t.Fatal(err)
			}
			id, err := e.c.PollDecoupled(ctx, dc.AuthReqID)
			if err != nil {
				t.Fatal(err)
			}
			if id.NationalID != "500000001815646/CPAT00045" || id.NationalIDType != "structure" || id.Structure != "500000001815646" ||
				id.AuthMode != "MOBILE" || id.Assurance != assurance.Substantial {
				t.Errorf("identity %+v", id)
			}
			if _, err := e.c.PollDecoupled(ctx, dc.AuthReqID); !errors.Is(err, ErrProvider) {
				t.Errorf("poll after the answer: %v", err)
			}
		})
	}
	t.Run("denied and expired", func(t *testing.T) {
		e := setup(t, psctest.Config{}, nil)
		dc, err := e.c.StartDecoupled(ctx, "899700427885", ChannelCard)
		if err != nil {
			t.Fatal(err)
		}
		if err := e.sim.DenyDecoupled(dc.AuthReqID); err != nil {
			t.Fatal(err)
		}
		if _, err := e.c.PollDecoupled(ctx, dc.AuthReqID); !errors.Is(err, ErrDenied) {
			t.Errorf("denied: %v", err)
		}
		dc, err = e.c.StartDecoupled(ctx, "899700427885", ChannelCard)
		if err != nil {
			t.Fatal(err)
		}
		e.clock.Advance(dc.ExpiresIn)
		if _, err := e.c.PollDecoupled(ctx, dc.AuthReqID); !errors.Is(err, ErrExpired) || Reason(err) != "psc_expired" {
			t.Errorf("expired: %v", err)
		}
	})
	t.Run("bad arguments", func(t *testing.T) {
		e := setup(t, psctest.Config{}, nil)
		for _, a := range [][2]string{{"", ChannelCard}, {"899700427885", "SMS"}, {"8997 00427885", ChannelCard}} {
			if _, err := e.c.StartDecoupled(ctx, a[0], a[1]); !errors.Is(err, ErrInvalidRequest) {
				t.Errorf("%q: %v", a, err)
			}
		}
		if _, err := e.c.PollDecoupled(ctx, ""); !errors.Is(err, ErrInvalidRequest) {
			t.Errorf("empty id: %v", err)
		}
	})
}
