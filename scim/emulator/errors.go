package emulator

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

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
