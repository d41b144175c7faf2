package main

import (
	"context"
	"sync"
	"time"

	"github.com/scimbridge/scimbridge/cmd/scimbridge/internal/service"
	"github.com/scimbridge/scimbridge/connectors"
	"github.com/scimbridge/scimbridge/connectors/ldap"
	"github.com/scimbridge/scimbridge/scim/reconcile"
)

// feedRunner returns the runner of the source's change feed, or nil when the source has none or
// service.feed.enabled is false.
func (rt *app) feedRunner(ctrl *reconcile.Controller, metrics *service.Metrics) (*reconcile.FeedRunner, error) {
	fc := rt.cfg.Service.Feed
	fs, ok := rt.source.(connectors.FeedSource)
	switch {
	case !ok:
		rt.log.Info("the source has no change feed; syncs run on the schedule and on webhooks", "source", rt.cfg.Source.Type)
		return nil, nil
	case !*fc.Enabled:
		rt.log.Info("the change feed is off (service.feed.enabled: false)", "source", rt.cfg.Source.Type)
		return nil, nil
	}
	if l := rt.cfg.Source.LDAP; rt.cfg.Source.Type == "ldap" && l != nil && (l.LDIFFile != "" || l.Feed.Mode == ldap.FeedOff) {
		rt.log.Info("the change feed is off: an LDIF export has none, or source.ldap.feed.mode is off", "source", rt.cfg.Source.Type)
		return nil, nil
	}
	if !rt.dirSource.CanTarget() {
		rt.log.Info("the source cannot read single entries: each change-feed run reads the whole source", "source", rt.cfg.Source.Type)
	}
	f, err := reconcile.NewFeedRunner(reconcile.FeedRunnerConfig{
		Source:     rt.cfg.Source.Type,
		Open:       fs.Feed,
		Controller: ctrl,
		State:      rt.state,
		Window:     time.Duration(*fc.BatchWindow),
		MaxBackoff: time.Duration(fc.MaxBackoff),
		OnApplied:  metrics.ObserveChangeLatency,
		Logger:     rt.log.With("component", "feed"),
	})
	if err != nil {
		return nil, err
	}
	metrics.AddFeed(f)
	return f, nil
}

// feedStatus is the status page's view of the feed (nil: no feed).
func feedStatus(f *reconcile.FeedRunner) service.FeedStatuser {
	if f == nil {
		return nil
	}
	return f
}

// withFeed runs the feed beside the controller's run, both until ctx ends.
func withFeed(run func(context.Context) error, f *reconcile.FeedRunner) func(context.Context) error {
	if f == nil {
		return run
	}
	return func(ctx context.Context) error {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = f.Run(ctx)
		}()
		err := run(ctx)
		cancel()
		wg.Wait()
		return err
	}
}
