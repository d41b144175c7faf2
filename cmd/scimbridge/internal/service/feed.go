package service

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/scimbridge/scimbridge/scim/reconcile"
)

// FeedStatuser reports a source's change feed (*reconcile.FeedRunner).
type FeedStatuser interface {
	Status() reconcile.FeedStatus
}

// feedMetrics are the change feed's metrics: a latency histogram the feed runner observes, and
// gauges read from the feed's status at each scrape.
type feedMetrics struct {
	latency *prometheus.HistogramVec
}

func newFeedMetrics() *feedMetrics {
	return &feedMetrics{latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "scimbridge_change_to_apply_seconds",
		Help:    "Time from a change in the source (the time the source gives, else the batch's arrival) to the end of the run that applied it, by source.",
		Buckets: []float64{0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800},
	}, []string{"source"})}
}

// ObserveChangeLatency records one change's change-to-apply latency; it is the feed runner's
// FeedRunnerConfig.OnApplied.
func (m *Metrics) ObserveChangeLatency(source string, d time.Duration) {
	m.feed.latency.WithLabelValues(source).Observe(d.Seconds())
}

// AddFeed exports a feed's state at each scrape: scimbridge_feed_state{source,state} (1 for the
// state it is in), scimbridge_feed_cursor_age_seconds, scimbridge_feed_last_batch_timestamp_seconds,
// scimbridge_feed_fallbacks_total and scimbridge_feed_restarts_total.
func (m *Metrics) AddFeed(f FeedStatuser) {
	m.reg.MustRegister(&feedCollector{f: f, now: time.Now})
}

var (
	feedStateDesc = prometheus.NewDesc("scimbridge_feed_state",
		"1 for the state the source's change feed is in (starting, watching, failed, stopped).", []string{"source", "state"}, nil)
	feedCursorAgeDesc = prometheus.NewDesc("scimbridge_feed_cursor_age_seconds",
		"How long the oldest change the saved cursor does not cover yet has waited (0: the cursor covers every delivered batch).", []string{"source"}, nil)
	feedLastBatchDesc = prometheus.NewDesc("scimbridge_feed_last_batch_timestamp_seconds",
		"Unix time the last batch of changes arrived (0: none yet).", []string{"source"}, nil)
	feedFallbacksDesc = prometheus.NewDesc("scimbridge_feed_fallbacks_total",
		"Full reads the change feed caused: a lost place, a cursor no longer accepted, a failed change-feed run.", []string{"source"}, nil)
	feedRestartsDesc = prometheus.NewDesc("scimbridge_feed_restarts_total",
		"Times the change feed failed and was opened again.", []string{"source"}, nil)
)

type feedCollector struct {
	f   FeedStatuser
	now func() time.Time
}

func (c *feedCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{feedStateDesc, feedCursorAgeDesc, feedLastBatchDesc, feedFallbacksDesc, feedRestartsDesc} {
		ch <- d
	}
}

func (c *feedCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.f.Status()
	for _, s := range []string{reconcile.FeedStarting, reconcile.FeedWatching, reconcile.FeedFailed, reconcile.FeedStopped} {
		v := 0.0
		if st.State == s {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(feedStateDesc, prometheus.GaugeValue, v, st.Source, s)
	}
	ch <- prometheus.MustNewConstMetric(feedCursorAgeDesc, prometheus.GaugeValue, st.CursorAge(c.now()).Seconds(), st.Source)
	last := 0.0
	if !st.LastBatch.IsZero() {
		last = float64(st.LastBatch.UnixNano()) / 1e9
	}
	ch <- prometheus.MustNewConstMetric(feedLastBatchDesc, prometheus.GaugeValue, last, st.Source)
	ch <- prometheus.MustNewConstMetric(feedFallbacksDesc, prometheus.CounterValue, float64(st.Fallbacks), st.Source)
	ch <- prometheus.MustNewConstMetric(feedRestartsDesc, prometheus.CounterValue, float64(st.Restarts), st.Source)
}

// AddSourceReads exports the source reads the engine made, full and targeted
// (scimbridge_source_reads_total{kind}), read at each scrape from reads.
func (m *Metrics) AddSourceReads(reads func() (full, targeted int)) {
	for _, kind := range []string{"full", "targeted"} {
		m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "scimbridge_source_reads_total", Help: "Reads of the source by kind: full (the whole directory) or targeted (the changed entries alone).",
			ConstLabels: prometheus.Labels{"kind": kind},
		}, func() float64 {
			f, t := reads()
			if kind == "full" {
				return float64(f)
			}
			return float64(t)
		}))
	}
}

// statusFeed is the change feed as the status page shows it.
type statusFeed struct {
	Source       string
	State        string
	LastBatch    time.Time
	LastChanges  int
	CursorAge    string
	Fallbacks    int
	LastFallback string
	Restarts     int
	// LastError is shown to a signed-in reader only (it may name hosts and paths).
	LastError string
}

func (s *Server) feedStatus(now time.Time, signedIn bool) *statusFeed {
	if s.cfg.Feed == nil {
		return nil
	}
	st := s.cfg.Feed.Status()
	f := &statusFeed{Source: st.Source, State: st.State, LastBatch: st.LastBatch, LastChanges: st.LastBatchChanges,
		CursorAge: st.CursorAge(now).Round(time.Second).String(), Fallbacks: st.Fallbacks, LastFallback: st.LastFallback,
		Restarts: st.Restarts}
	if signedIn {
		f.LastError = st.LastError
	}
	return f
}
