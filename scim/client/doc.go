// Package client talks to a target: Client is the SCIM 2.0 client that reads and writes users and
// groups (with the target's Profile, an adaptive Limiter and a RetryPolicy), IdentityStoreReader
// reads the same state through the AWS identitystore API, and APIError with ErrNotFound,
// ErrConflict and ErrThrottled is how either reports a target's refusal.
//
// The resources it carries are the model of package scim; the reconciler (scim/reconcile) takes
// a Client as its Target and either one as its StateReader.
package client
