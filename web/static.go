package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
	"time"
)

// StaticPrefix is the URL path under which StaticHandler must be mounted:
//
//	mux.Handle(web.StaticPrefix, web.StaticHandler())
const StaticPrefix = "/static/"

//go:embed static
var staticFS embed.FS

type staticFile struct {
	content     []byte
	contentType string
	hash        string // first 16 hex digits of the SHA-256 of content
}

type staticAssets map[string]staticFile

// loadStatic reads and hashes the embedded assets.
func loadStatic() (staticAssets, error) {
	assets := staticAssets{}
	err := fs.WalkDir(staticFS, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := staticFS.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		ct := mime.TypeByExtension(path.Ext(p))
		if ct == "" {
			ct = "application/octet-stream"
		}
		assets[strings.TrimPrefix(p, "static/")] = staticFile{content: b, contentType: ct, hash: hex.EncodeToString(sum[:8])}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("web: static assets: %w", err)
	}
	return assets, nil
}

// url returns the versioned URL of an asset: "/static/garde.css?v=<hash>".
// The version changes with the content, so browsers may cache it for a year.
func (a staticAssets) url(name string) string {
	f, ok := a[name]
	if !ok {
		return StaticPrefix + name
	}
	return StaticPrefix + name + "?v=" + f.hash
}

// StaticHandler serves the embedded static/ files under StaticPrefix. A
// request carrying the current version (?v=<hash>, as in the pages' links)
// is cacheable for a year; any other is revalidated (ETag), so an old
// cached page never pins a stale stylesheet. No directory listings.
func StaticHandler() http.Handler {
	assets, err := loadStatic()
	if err != nil {
		// The files are compiled in: this cannot fail at run time unless the
		// binary itself is broken.
		panic(err)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, http.StatusText(http.StatusMethodNotAllowed), http.StatusMethodNotAllowed)
			return
		}
		name, ok := strings.CutPrefix(r.URL.Path, StaticPrefix)
		f, found := assets[name]
		if !ok || !found {
			http.NotFound(w, r)
			return
		}
		h := w.Header()
		h.Set("Content-Type", f.contentType)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("ETag", `"`+f.hash+`"`)
		if r.URL.Query().Get("v") == f.hash {
			h.Set("Cache-Control", "public, max-age=31536000, immutable")
		} else {
			h.Set("Cache-Control", "no-cache")
		}
		http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(f.content))
	})
}
