package api

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"html/template"
	"io/fs"
	"net/http"
	"path"
	"strings"

	"github.com/statusengine/statusengine/plugin/statusengine/geo"
)

// GeoAttribution credits the geolocation database embedded in the binary,
// which its licence (CC BY 4.0) requires wherever its results are shown.
// The status page prints it in its footer; the text lives with the database.
const GeoAttribution = geo.Attribution

// GeoAttributionURL is where GeoAttribution links to: the NRO asks for
// attribution to nro.net.
const GeoAttributionURL = "https://www.nro.net/"

// The page and its assets are compiled into the binary so the status page
// works without network access and always matches the API it calls.
//
//go:embed static
var staticFiles embed.FS

// pageCSP allows nothing but this listener: the page loads no third-party
// code, and any markup that slipped into the DOM from report data could not
// run scripts.
const pageCSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// registerPage adds the status page at / and its assets under /static/.
func (s *Server) registerPage() {
	sub, err := fs.Sub(staticFiles, "static")
	if err != nil {
		panic(err) // the embed pattern guarantees the directory
	}
	index := renderIndex(sub)
	etags := hashFiles(sub)
	files := http.StripPrefix("/static", http.FileServerFS(sub))

	s.mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Content-Security-Policy", pageCSP)
		h.Set("Referrer-Policy", "no-referrer")
		// Revalidate every time: the page names the assets, and a new
		// binary may ship new ones.
		h.Set("Cache-Control", "no-cache")
		h.Set("ETag", index.etag)
		if match(r, index.etag) {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Write(index.body)
	})
	s.mux.HandleFunc("GET /static/{file...}", func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("file")
		etag, ok := etags[name]
		if !ok || name == "index.html" {
			// Unknown names, directories (no listings) and anything a
			// cleaned path would turn into something else.
			writeError(w, http.StatusNotFound, "no such file")
			return
		}
		h := w.Header()
		h.Set("ETag", etag)
		// An hour of freshness keeps auto-refresh off the assets; the
		// ETag makes the revalidation after that cheap.
		h.Set("Cache-Control", "public, max-age=3600")
		files.ServeHTTP(w, r)
	})
}

type page struct {
	body []byte
	etag string
}

// renderIndex fills the attribution into index.html once at start.
func renderIndex(fsys fs.FS) page {
	t := template.Must(template.ParseFS(fsys, "index.html"))
	var b bytes.Buffer
	err := t.Execute(&b, struct{ Attribution, AttributionURL string }{GeoAttribution, GeoAttributionURL})
	if err != nil {
		panic(err) // a constant template with constant data
	}
	return page{body: b.Bytes(), etag: etagOf(b.Bytes())}
}

// hashFiles returns the strong ETag of every regular file in fsys, keyed by
// its slash-separated path. Embedded files carry no modification time, so
// http.ServeContent can only answer conditional requests by ETag.
func hashFiles(fsys fs.FS) map[string]string {
	etags := map[string]string{}
	fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		etags[path.Clean(p)] = etagOf(b)
		return nil
	})
	return etags
}

func etagOf(b []byte) string {
	sum := sha256.Sum256(b)
	return `"` + base64.RawURLEncoding.EncodeToString(sum[:12]) + `"`
}

func match(r *http.Request, etag string) bool {
	for _, t := range strings.Split(r.Header.Get("If-None-Match"), ",") {
		if t = strings.TrimSpace(t); t == etag || t == "*" || t == "W/"+etag {
			return true
		}
	}
	return false
}
