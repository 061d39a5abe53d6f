package api

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"html/template"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
	"sync"
	"time"

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
	st := loadStatic()
	index, assets := st.index, st.assets
	files := http.StripPrefix("/static", http.FileServerFS(st.fsys))

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
		a, ok := assets[name]
		if !ok || name == "index.html" {
			// Unknown names, directories (no listings) and anything a
			// cleaned path would turn into something else.
			writeError(w, http.StatusNotFound, "no such file")
			return
		}
		h := w.Header()
		// An hour of freshness keeps auto-refresh off the assets; the
		// ETag makes the revalidation after that cheap.
		h.Set("Cache-Control", "public, max-age=3600")
		if a.gz == nil {
			h.Set("ETag", a.etag)
			files.ServeHTTP(w, r)
			return
		}
		h.Add("Vary", "Accept-Encoding")
		if !acceptsGzip(r) {
			h.Set("ETag", a.etag)
			files.ServeHTTP(w, r)
			return
		}
		h.Set("ETag", a.gzETag)
		h.Set("Content-Type", a.contentType)
		h.Set("Content-Encoding", "gzip")
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(a.gz))
	})
}

// asset is one embedded file's validators and, for text worth compressing,
// its gzip encoding, made once at start: Chart.js alone shrinks from 210 to
// about 70 KB, which a phone on a slow link notices.
type asset struct {
	etag        string
	gz          []byte
	gzETag      string
	contentType string
}

var compressible = map[string]bool{".js": true, ".css": true, ".json": true, ".html": true, ".md": true, ".svg": true}

// loadAssets returns every regular file in fsys by slash-separated path.
// Embedded files carry no modification time, so conditional requests are
// answered by ETag only.
func loadAssets(fsys fs.FS) map[string]asset {
	assets := map[string]asset{}
	fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		a := asset{etag: etagOf(b)}
		if ext := path.Ext(p); compressible[ext] && len(b) > 1024 {
			var z bytes.Buffer
			zw, _ := gzip.NewWriterLevel(&z, gzip.BestCompression)
			zw.Write(b)
			zw.Close()
			if z.Len() < len(b)*9/10 {
				a.gz, a.gzETag = z.Bytes(), etagOf(z.Bytes())
				a.contentType = mime.TypeByExtension(ext)
				if a.contentType == "" {
					a.contentType = "text/plain; charset=utf-8"
				}
			}
		}
		assets[p] = a
		return nil
	})
	return assets
}

// acceptsGzip tells whether the request's Accept-Encoding allows gzip.
func acceptsGzip(r *http.Request) bool {
	for _, e := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		name, params, _ := strings.Cut(strings.TrimSpace(e), ";")
		if name = strings.TrimSpace(name); name != "gzip" && name != "*" {
			continue
		}
		q := strings.ReplaceAll(params, " ", "")
		return q != "q=0" && q != "q=0.0" && q != "q=0.00" && q != "q=0.000"
	}
	return false
}

// static is the prepared page and assets, shared by every Server: the
// side listener makes a new one on each Corefile reload.
type static struct {
	fsys   fs.FS
	index  page
	assets map[string]asset
}

var loadStatic = sync.OnceValue(func() static {
	sub, err := fs.Sub(staticFiles, "static")
	if err != nil {
		panic(err) // the embed pattern guarantees the directory
	}
	return static{fsys: sub, index: renderIndex(sub), assets: loadAssets(sub)}
})

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
