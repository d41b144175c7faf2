package config

import (
	"fmt"
	"time"
)

// Feed configures the source's change feed in `scimbridge serve`:
//
//	service:
//	  feed:
//	    enabled: true        # default: on for sources that have a change feed
//	    batch_window: 2s     # a change waits this long for others to share its run
//	    max_backoff: 5m      # longest wait before a failed feed is opened again
//
// The feed's runs read only the changed entries where the source can (targeted reads) and apply
// only what they moved; the scheduled full runs (service.interval) go on whatever the feed does.
type Feed struct {
	// Enabled turns the change feed on or off; default on (sources without a feed ignore it).
	Enabled *bool `yaml:"enabled,omitempty"`
	// BatchWindow is how long a change waits, from its arrival, for other changes to share its
	// run; default 2s.
	BatchWindow *Duration `yaml:"batch_window,omitempty"`
	// MaxBackoff bounds the wait before a failed feed is opened again (it starts at 1s and
	// doubles); default 5m.
	MaxBackoff Duration `yaml:"max_backoff,omitempty"`
}

func (f *Feed) setDefaults() {
	if f.Enabled == nil {
		f.Enabled = ptr(true)
	}
	if f.BatchWindow == nil {
		f.BatchWindow = ptr(Duration(2 * time.Second))
	}
	if f.MaxBackoff == 0 {
		f.MaxBackoff = Duration(5 * time.Minute)
	}
}

func (f *Feed) validate() []error {
	var errs []error
	if f.BatchWindow != nil && *f.BatchWindow < 0 {
		errs = append(errs, fmt.Errorf("service.feed.batch_window: must not be negative"))
	}
	if f.MaxBackoff < 0 {
		errs = append(errs, fmt.Errorf("service.feed.max_backoff: must not be negative"))
	} else if f.MaxBackoff > 0 && f.MaxBackoff < Duration(time.Second) {
		errs = append(errs, fmt.Errorf("service.feed.max_backoff: %s is under 1s", time.Duration(f.MaxBackoff)))
	}
	return errs
}
