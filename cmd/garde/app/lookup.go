package app

import (
	"log/slog"
	"time"

	"github.com/garde-sso/garde/broker/flow"
	"github.com/garde-sso/garde/cmd/garde/config"
)

// OpenConnectors opens the configured password connectors as serve does,
// for administration commands that look people up (garde policy test).
// The caller closes those that have a Close method.
func OpenConnectors(cfg *config.Config, logger *slog.Logger, baseDir string) ([]flow.PasswordSource, error) {
	return openConnectors(cfg, Options{Logger: logger, Clock: time.Now, BaseDir: baseDir})
}
