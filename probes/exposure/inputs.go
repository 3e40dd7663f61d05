package exposure

import "errors"

// CheckMetadata checks --metadata-address is an IP:port.
func CheckMetadata(v string) error {
	if _, err := ParseMetadata(v); err != nil {
		return errors.New("is not an IP address with a port 1-65535")
	}
	return nil
}
