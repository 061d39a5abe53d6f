package statusengine

import (
	"net/netip"

	"github.com/statusengine/statusengine/plugin/statusengine/geo"
)

// Locator geolocates a report from the resolver address and, when the
// resolver sent one, its EDNS Client Subnet.
type Locator interface {
	Locate(resolver netip.Addr, ecs netip.Prefix) geo.Location
}
