package scim

import "strconv"

// quote quotes s for messages, keeping it printable however hostile the source value is.
func quote(s string) string {
	const max = 200
	if len(s) > max {
		s = s[:max] + "..."
	}
	return strconv.QuoteToGraphic(s)
}
