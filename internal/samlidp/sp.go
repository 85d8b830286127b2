package samlidp

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/crewjam/saml"
	"github.com/crewjam/saml/samlsp"

	"github.com/wardenidp/warden/internal/awsfed"
)

// maxSPMetadata bounds an SP's metadata (file or URL).
const maxSPMetadata = 1 << 20

//go:embed aws-sp-metadata.xml
var awsSPMetadataTemplate string

// awsSP is the AWS sign-in service provider of the configured partition
// and region.
type awsSP struct {
	partition string
	entityID  string // urn:amazon:webservices[...]: the Audience (item 6)
	acs       string // the sign-in endpoint (items 1-2)
	md        *saml.EntityDescriptor
	cfg       AWSConfig
}

func newAWSSP(cfg AWSConfig) (*awsSP, error) {
	entityID, ok := awsfed.SAMLEntityID(cfg.Partition)
	if !ok {
		return nil, fmt.Errorf("unknown partition %q", cfg.Partition)
	}
	acs, err := awsfed.SigninACS(cfg.Partition, cfg.Region)
	if err != nil {
		return nil, err
	}
	doc := strings.NewReplacer("ENTITY_ID", entityID, "ACS_URL", acs).Replace(awsSPMetadataTemplate)
	md, err := parseSPMetadata([]byte(doc))
	if err != nil {
		return nil, fmt.Errorf("embedded SP metadata: %w", err)
	}
	return &awsSP{partition: cfg.Partition, entityID: entityID, acs: acs, md: md, cfg: cfg}, nil
}

// AWSMetadata returns the SP metadata Warden uses for AWS sign-in.
func (i *IdP) AWSMetadata() (*saml.EntityDescriptor, bool) {
	if i.aws == nil {
		return nil, false
	}
	return i.aws.md, true
}

// parseSPMetadata parses one EntityDescriptor with an SPSSODescriptor that
// has at least one assertion consumer service.
func parseSPMetadata(b []byte) (*saml.EntityDescriptor, error) {
	if len(b) > maxSPMetadata {
		return nil, fmt.Errorf("metadata larger than %d bytes", maxSPMetadata)
	}
	if err := checkXML(b); err != nil {
		return nil, err
	}
	md, err := samlsp.ParseMetadata(b)
	if err != nil {
		return nil, fmt.Errorf("metadata: %w", err)
	}
	if md.EntityID == "" {
		return nil, errors.New("metadata: no entityID")
	}
	n := 0
	for _, d := range md.SPSSODescriptors {
		n += len(d.AssertionConsumerServices)
	}
	if n == 0 {
		return nil, fmt.Errorf("metadata of %s: no SPSSODescriptor with an AssertionConsumerService", md.EntityID)
	}
	return md, nil
}

// spEntry is one service provider.
type spEntry struct {
	name   string
	aws    *awsSP    // the AWS preset, or nil
	cfg    *SPConfig // a generic SP, or nil
	groups *regexp.Regexp
	md     atomic.Pointer[saml.EntityDescriptor]
}

func (e *spEntry) metadata() *saml.EntityDescriptor { return e.md.Load() }

// signResponse reports whether the SP wants the Response signed too.
func (e *spEntry) signResponse() bool {
	if e.aws != nil {
		return e.aws.cfg.SignResponse
	}
	return e.cfg.SignResponse
}

// registry is every service provider, by entity ID; it is crewjam's
// ServiceProviderProvider.
type registry struct {
	entries  []*spEntry
	byEntity atomic.Pointer[map[string]*spEntry]
	mu       sync.Mutex // serializes rebuilds of byEntity
	client   *http.Client
	log      *slog.Logger
	now      func() time.Time
}

func newRegistry(cfgs []SPConfig, aws *awsSP, client *http.Client, log *slog.Logger, now func() time.Time) (*registry, error) {
	r := &registry{client: client, log: log, now: now}
	if aws != nil {
		e := &spEntry{name: "aws", aws: aws}
		e.md.Store(aws.md)
		r.entries = append(r.entries, e)
	}
	for k := range cfgs {
		c := &cfgs[k]
		e := &spEntry{name: c.Name, cfg: c}
		if c.GroupsFilter != "" {
			e.groups = regexp.MustCompile(c.GroupsFilter) // validated
		}
		md, err := r.load(context.Background(), c)
		if err != nil {
			return nil, fmt.Errorf("service provider %s: %w", c.Name, err)
		}
		e.md.Store(md)
		r.entries = append(r.entries, e)
	}
	if err := r.rebuild(); err != nil {
		return nil, err
	}
	return r, nil
}

// rebuild indexes the entries by entity ID; two SPs with one entity ID
// are an error (at start) or keep the previous index (on refresh).
func (r *registry) rebuild() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := make(map[string]*spEntry, len(r.entries))
	for _, e := range r.entries {
		id := e.metadata().EntityID
		if other, dup := m[id]; dup {
			return fmt.Errorf("service providers %s and %s have the same entity ID %q", other.name, e.name, id)
		}
		m[id] = e
	}
	r.byEntity.Store(&m)
	return nil
}

// lookup returns the SP with entity ID id.
func (r *registry) lookup(id string) (*spEntry, bool) {
	e, ok := (*r.byEntity.Load())[id]
	return e, ok
}

// GetServiceProvider implements saml.ServiceProviderProvider.
func (r *registry) GetServiceProvider(_ *http.Request, id string) (*saml.EntityDescriptor, error) {
	if e, ok := r.lookup(id); ok {
		return e.metadata(), nil
	}
	return nil, os.ErrNotExist
}

// load reads a generic SP's metadata from its file or URL.
func (r *registry) load(ctx context.Context, c *SPConfig) (*saml.EntityDescriptor, error) {
	var b []byte
	var err error
	if c.MetadataFile != "" {
		b, err = readLimited(c.MetadataFile)
	} else {
		b, err = r.fetch(ctx, c.MetadataURL)
	}
	if err != nil {
		return nil, err
	}
	return parseSPMetadata(b)
}

func readLimited(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("metadata file: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxSPMetadata+1))
	if err != nil {
		return nil, fmt.Errorf("metadata file: %w", err)
	}
	return b, nil
}

func (r *registry) fetch(ctx context.Context, u string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("metadata url: %w", err)
	}
	req.Header.Set("Accept", MetadataContentType+", application/xml, text/xml")
	resp, err := r.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("metadata url: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("metadata url: HTTP %d", resp.StatusCode)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxSPMetadata+1))
	if err != nil {
		return nil, fmt.Errorf("metadata url: %w", err)
	}
	return b, nil
}

// startRefresh re-reads, every RefreshInterval, the metadata of each SP
// that has one, until ctx ends. A failed refresh is logged and the last
// good copy stays in use.
func (r *registry) startRefresh(ctx context.Context) {
	for _, e := range r.entries {
		if e.cfg == nil || e.cfg.RefreshInterval <= 0 {
			continue
		}
		go func(e *spEntry) {
			t := time.NewTicker(e.cfg.RefreshInterval)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
					r.refresh(ctx, e)
				}
			}
		}(e)
	}
}

// refresh reloads one SP's metadata now.
func (r *registry) refresh(ctx context.Context, e *spEntry) {
	md, err := r.load(ctx, e.cfg)
	if err != nil {
		r.log.Warn("saml: service provider metadata refresh failed; keeping the last good copy",
			slog.String("sp", e.name), slog.String("err", err.Error()))
		return
	}
	old := e.md.Swap(md)
	if old.EntityID != md.EntityID {
		if err := r.rebuild(); err != nil {
			e.md.Store(old)
			r.log.Warn("saml: service provider metadata refresh refused; keeping the last good copy",
				slog.String("sp", e.name), slog.String("err", err.Error()))
			return
		}
	}
	r.log.Debug("saml: service provider metadata refreshed", slog.String("sp", e.name))
}
