package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"
)

// ServiceProviderConfig is what a target says it supports (RFC 7643 section 5), as read from
// GET /ServiceProviderConfig.
type ServiceProviderConfig struct {
	Patch              bool
	Bulk               bool
	BulkMaxOperations  int
	BulkMaxPayloadSize int
	Filter             bool
	FilterMaxResults   int
	ChangePassword     bool
	Sort               bool
	ETag               bool
}

type spcSupported struct {
	Supported bool `json:"supported"`
}

type spcWire struct {
	Patch spcSupported `json:"patch"`
	Bulk  struct {
		Supported      bool `json:"supported"`
		MaxOperations  int  `json:"maxOperations"`
		MaxPayloadSize int  `json:"maxPayloadSize"`
	} `json:"bulk"`
	Filter struct {
		Supported  bool `json:"supported"`
		MaxResults int  `json:"maxResults"`
	} `json:"filter"`
	ChangePassword spcSupported `json:"changePassword"`
	Sort           spcSupported `json:"sort"`
	ETag           spcSupported `json:"etag"`
}

// ReadServiceProviderConfig reads the target's /ServiceProviderConfig.
func (c *Client) ReadServiceProviderConfig(ctx context.Context) (ServiceProviderConfig, error) {
	var w spcWire
	if err := c.call(ctx, "GetServiceProviderConfig", "GET", "/ServiceProviderConfig", nil, nil, &w); err != nil {
		return ServiceProviderConfig{}, err
	}
	return ServiceProviderConfig{
		Patch: w.Patch.Supported, Bulk: w.Bulk.Supported, BulkMaxOperations: w.Bulk.MaxOperations,
		BulkMaxPayloadSize: w.Bulk.MaxPayloadSize, Filter: w.Filter.Supported, FilterMaxResults: w.Filter.MaxResults,
		ChangePassword: w.ChangePassword.Supported, Sort: w.Sort.Supported, ETag: w.ETag.Supported,
	}, nil
}

// maxDiscoveredPage bounds a page size taken from a target's filter.maxResults.
const maxDiscoveredPage = 1000

// discovered is what the client uses of a target's /ServiceProviderConfig.
type discovered struct {
	pageSize int
	filter   bool // the target filters (members.value eq ...)
}

// settings returns the page size and filter support to use, reading /ServiceProviderConfig once
// when the profile says to discover them. A target without the endpoint (404, 501, an answer that
// is no configuration) gets the defaults (100, filters assumed) with a warning; any other failure
// is returned, and the next call tries again.
func (c *Client) settings(ctx context.Context) (discovered, error) {
	c.discoverMu.Lock()
	defer c.discoverMu.Unlock()
	if c.discovered != nil {
		return *c.discovered, nil
	}
	d := discovered{pageSize: c.profile.MaxPageSize, filter: true}
	if c.profile.Discover {
		spc, err := c.ReadServiceProviderConfig(ctx)
		var ae *APIError
		switch {
		case err == nil:
			if d.pageSize <= 0 && spc.FilterMaxResults > 0 {
				d.pageSize = min(spc.FilterMaxResults, maxDiscoveredPage)
			}
			d.filter = spc.Filter
			c.log.Info("read the target's /ServiceProviderConfig", "filter", spc.Filter, "max_results", spc.FilterMaxResults,
				"patch", spc.Patch, "bulk", spc.Bulk, "etag", spc.ETag, "page_size", max(d.pageSize, 0))
			if !spc.Patch {
				c.log.Warn("the target's /ServiceProviderConfig says it does not support PATCH, which group membership changes and disabling users need")
			}
		case errors.As(err, &ae) && (ae.Status == http.StatusNotFound || ae.Status == http.StatusNotImplemented ||
			ae.Status == http.StatusMethodNotAllowed || ae.Status < 300):
			c.log.Warn("the target has no readable /ServiceProviderConfig; paging by 100 and assuming it filters", "err", err)
		default:
			return discovered{}, fmt.Errorf("scim: read the target's capabilities: %w", err)
		}
	}
	if d.pageSize <= 0 {
		d.pageSize = 100
	}
	c.discovered = &d
	return d, nil
}
