package emulator

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	scimerrors "github.com/elimity-com/scim/errors"
	"github.com/google/uuid"
)

// Details Identity Center puts in its error bodies.
const (
	detailDuplicate  = "Refused to create a new, duplicate resource."
	detailUnparsable = "Request is unparsable, syntactically incorrect, or violates schema."
	detailThrottled  = "Rate exceeded"
)

// apiError is a client-visible failure: an HTTP status and a detail. For the identitystore API,
// awsType names the exception (ValidationException, ResourceNotFoundException, ...).
type apiError struct {
	status  int
	detail  string
	awsType string
}

func (e *apiError) Error() string {
	return fmt.Sprintf("status %d: %s", e.status, e.detail)
}

func notFound(format string, args ...any) *apiError {
	return &apiError{status: http.StatusNotFound, detail: fmt.Sprintf(format, args...), awsType: "ResourceNotFoundException"}
}

func conflict(detail string) *apiError {
	return &apiError{status: http.StatusConflict, detail: detail, awsType: "ConflictException"}
}

// asAPIError returns err as an *apiError, or a 500 for anything unexpected.
func asAPIError(err error) *apiError {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae
	}
	return &apiError{status: http.StatusInternalServerError, detail: "An internal error occurred.", awsType: "InternalServerException"}
}

// scimErrorBody is the error body IAM Identity Center's SCIM endpoint sends: both "schema" and
// "schemas", the status as a string, a request id and a time stamp.
type scimErrorBody struct {
	Schema             []string `json:"schema"`
	Schemas            []string `json:"schemas"`
	Detail             string   `json:"detail"`
	Status             string   `json:"status"`
	ExceptionRequestID string   `json:"exceptionRequestId"`
	TimeStamp          string   `json:"timeStamp"`
}

func newRequestID() string { return uuid.NewString() }

// writeSCIMError writes the AWS-shaped SCIM error body.
func writeSCIMError(w http.ResponseWriter, status int, detail string) {
	if detail == "" {
		detail = http.StatusText(status)
	}
	reqID := w.Header().Get("X-Amzn-RequestId")
	if reqID == "" {
		reqID = newRequestID()
	}
	body, _ := json.Marshal(scimErrorBody{
		Schema:             []string{errorURN},
		Schemas:            []string{errorURN},
		Detail:             detail,
		Status:             strconv.Itoa(status),
		ExceptionRequestID: reqID,
		TimeStamp:          time.Now().UTC().Format("2006-01-02 15:04:05.000"),
	})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Del("Content-Length")
	w.WriteHeader(status)
	w.Write(body)
}

// toLibError converts an error from the storage layer into the library's error type, so the
// library sends the status we chose; the errorRewriter then reshapes the body.
func (e *Emulator) toLibError(r *http.Request, err error) error {
	ae := asAPIError(err)
	if ae.status == http.StatusInternalServerError {
		e.log.ErrorContext(r.Context(), "emulator request failed", "method", r.Method, "path", r.URL.Path, "error", err)
	}
	return scimerrors.ScimError{Status: ae.status, Detail: ae.detail}
}

// errorRewriter sits between the elimity-com/scim server and the client and turns the library's
// RFC 7644 error bodies into Identity Center's shape.
type errorRewriter struct {
	http.ResponseWriter
	status int
	buf    bytes.Buffer
}

func (w *errorRewriter) WriteHeader(code int) {
	if w.status != 0 {
		return
	}
	w.status = code
	if code < 400 {
		w.ResponseWriter.WriteHeader(code)
	}
}

func (w *errorRewriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if w.status >= 400 {
		return w.buf.Write(b)
	}
	return w.ResponseWriter.Write(b)
}

// finish sends a buffered error in the AWS shape.
func (w *errorRewriter) finish() {
	if w.status < 400 {
		return
	}
	var lib struct {
		Detail string `json:"detail"`
	}
	_ = json.Unmarshal(w.buf.Bytes(), &lib)
	detail := lib.Detail
	if w.status == http.StatusBadRequest && detail == "" {
		detail = detailUnparsable
	}
	writeSCIMError(w.ResponseWriter, w.status, detail)
}
