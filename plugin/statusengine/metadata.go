package statusengine

import (
	"context"

	"github.com/coredns/coredns/plugin/metadata"
	"github.com/coredns/coredns/request"

	"github.com/statusengine/statusengine/plugin/statusengine/codec"
)

type reportKey struct{}

// Metadata implements metadata.Provider. The values are filled in by ServeDNS
// once the name is decoded, so a query costs nothing extra when no plugin
// reads them.
func (se *StatusEngine) Metadata(ctx context.Context, state request.Request) context.Context {
	holder := new(codec.Report)
	ctx = context.WithValue(ctx, reportKey{}, holder)
	fields := map[string]func(*codec.Report) string{
		"modsec": func(r *codec.Report) string { return r.Modsec },
		"server": func(r *codec.Report) string { return r.Server },
		"apr":    func(r *codec.Report) string { return r.APRLoaded },
		"pcre":   func(r *codec.Report) string { return r.PCRELoaded },
		"lua":    func(r *codec.Report) string { return r.Lua },
		"libxml": func(r *codec.Report) string { return r.Libxml },
		"id":     func(r *codec.Report) string { return r.ID },
		"beacon": func(r *codec.Report) string { return r.Beacon },
	}
	for name, get := range fields {
		metadata.SetValueFunc(ctx, pluginName+"/"+name, func() string { return get(holder) })
	}
	return ctx
}

func setMetadata(ctx context.Context, rep *codec.Report) {
	if holder, ok := ctx.Value(reportKey{}).(*codec.Report); ok {
		*holder = *rep
	}
}
