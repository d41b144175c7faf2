package service

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/scimbridge/scimbridge/scim/client"
	"github.com/scimbridge/scimbridge/scim/plan"
	"github.com/scimbridge/scimbridge/scim/reconcile"
)

// Metrics are the service's Prometheus metrics, all named scimbridge_*. It is the SCIM client's
// client.Observer (API calls and throttles) and is told about every run by the controller. They are
// served at /metrics with no authentication: counts and timings, no names or secrets, yet the
// listener should be reachable by the scraper only.
type Metrics struct {
	reg *prometheus.Registry

	runs         *prometheus.CounterVec
	duration     *prometheus.HistogramVec
	objects      *prometheus.CounterVec
	access       *prometheus.CounterVec
	blocked      prometheus.Counter
	lastSuccess  prometheus.Gauge
	lastRun      prometheus.Gauge
	pending      prometheus.Gauge
	pendingKind  *prometheus.GaugeVec
	inProgress   prometheus.Gauge
	apiRequests  *prometheus.CounterVec
	apiThrottled *prometheus.CounterVec
	apiDuration  *prometheus.HistogramVec
	webhooks     *prometheus.CounterVec
	standby      prometheus.Gauge
	lowerBound   prometheus.Counter
	feed         *feedMetrics
}

var _ client.Observer = (*Metrics)(nil)

// NewMetrics registers the metrics, with the Go runtime and process collectors, in a registry
// of their own.
func NewMetrics() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "scimbridge_runs_total", Help: "Sync runs by trigger, result (success, partial, blocked, failed) and dry_run.",
		}, []string{"trigger", "result", "dry_run"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "scimbridge_run_duration_seconds", Help: "Duration of sync runs.",
			Buckets: []float64{0.1, 0.5, 1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600},
		}, []string{"trigger", "dry_run"}),
		objects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "scimbridge_objects_total",
			Help: "Objects changed in the target by real runs: created, updated, deleted, disabled, adopted, member_added, member_removed, failed, skipped.",
		}, []string{"change"}),
		access: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "scimbridge_access_changes_total",
			Help: "Access changes made by real runs: assignment_created, assignment_deleted, permission_set_created, permission_set_updated, permission_set_provisioned, permission_set_deleted, failed.",
		}, []string{"kind"}),
		blocked: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "scimbridge_runs_blocked_by_guard_total", Help: "Runs a safety guard blocked.",
		}),
		lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "scimbridge_last_success_timestamp_seconds", Help: "Unix time the last successful real run ended (0: none yet).",
		}),
		lastRun: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "scimbridge_last_run_timestamp_seconds", Help: "Unix time the last run ended, whatever its result.",
		}),
		pending: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "scimbridge_pending_changes", Help: "Changes the last dry run planned (objects and memberships).",
		}),
		pendingKind: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "scimbridge_pending_changes_by_kind", Help: "Changes the last dry run planned, by kind.",
		}, []string{"change"}),
		inProgress: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "scimbridge_run_in_progress", Help: "1 while a run is going on.",
		}),
		apiRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "scimbridge_api_requests_total", Help: "HTTP requests to the target (each attempt) by target API, operation and status class.",
		}, []string{"target", "operation", "code"}),
		apiThrottled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "scimbridge_api_throttled_total", Help: "Requests the target throttled (429 or ThrottlingException) by target API and operation.",
		}, []string{"target", "operation"}),
		apiDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "scimbridge_api_request_duration_seconds", Help: "Duration of requests to the target.",
			Buckets: prometheus.ExponentialBuckets(0.01, 2.5, 10),
		}, []string{"target"}),
		webhooks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "scimbridge_webhook_requests_total", Help: "Webhook requests by endpoint and answer.",
		}, []string{"endpoint", "code"}),
		standby: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "scimbridge_standby", Help: "1 while this replica is a standby (another replica holds the state lock) and does not sync.",
		}),
	}
	m.feed = newFeedMetrics()
	m.lowerBound = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "scimbridge_lower_bound_writes_total",
		Help: "The lower bound of write requests of the plans real runs applied (compare with scimbridge_api_requests_total's writes).",
	})
	m.reg.MustRegister(m.feed.latency, m.lowerBound)
	m.reg.MustRegister(m.runs, m.duration, m.objects, m.access, m.blocked, m.lastSuccess, m.lastRun, m.pending,
		m.pendingKind, m.inProgress, m.apiRequests, m.apiThrottled, m.apiDuration, m.webhooks, m.standby,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Registry returns the registry, for tests and for adding collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// ObserveRequest implements client.Observer.
func (m *Metrics) ObserveRequest(api, op string, status int, d time.Duration, err error) {
	code := "none"
	if status > 0 {
		code = strconv.Itoa(status/100) + "xx"
	}
	m.apiRequests.WithLabelValues(api, op, code).Inc()
	m.apiDuration.WithLabelValues(api).Observe(d.Seconds())
	if status == http.StatusTooManyRequests || errors.Is(err, client.ErrThrottled) {
		m.apiThrottled.WithLabelValues(api, op).Inc()
	}
}

// SetLastSuccess sets the last success timestamp (from the run history at start).
func (m *Metrics) SetLastSuccess(t time.Time) {
	if !t.IsZero() {
		m.lastSuccess.Set(float64(t.UnixNano()) / 1e9)
	}
}

// RunStarted is told when a run starts.
func (m *Metrics) RunStarted(reconcile.RunOptions) { m.inProgress.Set(1) }

// RunFinished is told what a run did.
func (m *Metrics) RunFinished(opts reconcile.RunOptions, res *reconcile.Result, err error) {
	m.inProgress.Set(0)
	dry := strconv.FormatBool(opts.DryRun)
	if res == nil {
		// The run could not even be recorded.
		m.runs.WithLabelValues(opts.Trigger, reconcile.ResultFailed, dry).Inc()
		return
	}
	m.runs.WithLabelValues(res.Trigger, res.Result, dry).Inc()
	m.duration.WithLabelValues(res.Trigger, dry).Observe(res.Duration.Seconds())
	m.lastRun.Set(float64(res.Ended.UnixNano()) / 1e9)
	var blocked *plan.BlockedError
	if errors.As(err, &blocked) {
		m.blocked.Inc()
	}
	if res.DryRun {
		if res.Plan != nil && res.Result == reconcile.ResultSuccess {
			s := res.Plan.Summarize(0)
			m.pending.Set(float64(res.Plan.Writes()))
			for k, v := range map[string]int{
				"create_user": s.CreateUsers, "update_user": s.UpdateUsers, "disable_user": s.DisableUsers,
				"delete_user": s.DeleteUsers, "create_group": s.CreateGroups, "update_group": s.UpdateGroups,
				"delete_group": s.DeleteGroups, "add_member": s.AddMembers, "remove_member": s.RemoveMembers,
			} {
				m.pendingKind.WithLabelValues(k).Set(float64(v))
			}
		}
		return
	}
	if res.Plan != nil && res.Result != reconcile.ResultBlocked {
		m.lowerBound.Add(float64(res.Plan.LowerBound(0)))
	}
	c := res.Counts
	for k, v := range map[string]int{
		"created": c.Created, "updated": c.Updated, "deleted": c.Deleted, "disabled": c.Disabled,
		"adopted": c.Adopted, "member_added": c.MemberAdds, "member_removed": c.MemberRemoves,
		"failed": c.Failed, "skipped": c.Skipped,
	} {
		m.objects.WithLabelValues(k).Add(float64(v))
	}
	a := c.Access
	for k, v := range map[string]int{
		"assignment_created": a.AssignmentsCreated, "assignment_deleted": a.AssignmentsDeleted,
		"permission_set_created": a.PermissionSetsCreated, "permission_set_updated": a.PermissionSetsUpdated,
		"permission_set_provisioned": a.PermissionSetsProvisioned, "permission_set_deleted": a.PermissionSetsDeleted,
		"failed": a.Failed,
	} {
		m.access.WithLabelValues(k).Add(float64(v))
	}
	if res.Result == reconcile.ResultSuccess {
		m.lastSuccess.Set(float64(res.Ended.UnixNano()) / 1e9)
	}
}

// webhook counts one webhook answer.
func (m *Metrics) webhook(endpoint string, code int) {
	m.webhooks.WithLabelValues(endpoint, strconv.Itoa(code)).Inc()
}

// setStandby sets scimbridge_standby.
func (m *Metrics) setStandby(standby bool) {
	v := 0.0
	if standby {
		v = 1
	}
	m.standby.Set(v)
}
