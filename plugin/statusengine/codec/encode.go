package codec

import (
	"encoding/base32"
	"strconv"
	"strings"
)

// defaultLabelLen is the data label length of the ModSecurity client on
// every platform but Windows, which uses 30.
const defaultLabelLen = 32

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// Encode returns the name the ModSecurity client resolves for beacon:
// unpadded uppercase base32 in 32-character labels, the epoch label unless
// epoch < 0, then zone. The result always ends with a dot.
func Encode(beacon string, epoch int64, zone string) string {
	return EncodeLabels(beacon, epoch, zone, defaultLabelLen)
}

// EncodeLabels is Encode with labelLen characters per data label; Windows
// builds use 30. A labelLen below 1 means 32. Dots are counted from the
// left, so the last data label is the short one, as in the C client.
func EncodeLabels(beacon string, epoch int64, zone string, labelLen int) string {
	if labelLen < 1 {
		labelLen = defaultLabelLen
	}
	enc := b32.EncodeToString([]byte(beacon))
	zone = strings.TrimSuffix(zone, ".")

	var b strings.Builder
	b.Grow(len(enc) + len(enc)/labelLen + len(zone) + 24)
	for i := 0; i < len(enc); i += labelLen {
		b.WriteString(enc[i:min(i+labelLen, len(enc))])
		b.WriteByte('.')
	}
	if epoch >= 0 {
		b.WriteString(strconv.FormatInt(epoch, 10))
		b.WriteByte('.')
	}
	if zone != "" {
		b.WriteString(zone)
		b.WriteByte('.')
	}
	if b.Len() == 0 {
		return "."
	}
	return b.String()
}
