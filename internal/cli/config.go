package cli

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/wardenidp/warden/internal/awsfed"
	"github.com/wardenidp/warden/internal/cli/credcache"
)

// Config is the user's configuration, ConfigDir/config.yaml. Flags of the
// individual commands override it. Region, Via, STSEndpoint and
// FederationEndpoint apply to roles of Partition (the partition Warden's
// SAML sign-in serves); roles of other partitions take theirs from
// Partitions (PartitionConfig), so that commercial, GovCloud and China
// roles live side by side.
type Config struct {
	IdPURL         string `yaml:"idp_url"`
	Region         string `yaml:"region"`          // default: the partition's (us-east-1)
	Partition      string `yaml:"partition"`       // aws (default), aws-us-gov, aws-cn
	SessionSeconds int    `yaml:"session_seconds"` // default: the role's, else 3600
	Via            string `yaml:"via"`             // saml (default) | web-identity
	STSEndpoint    string `yaml:"sts_endpoint"`    // "" = the regional endpoint of the role's partition
	// FederationEndpoint replaces AWS's console federation endpoint
	// (a proxy, or a test server); "" = the partition's.
	FederationEndpoint string                     `yaml:"federation_endpoint,omitempty"`
	Partitions         map[string]PartitionConfig `yaml:"partitions,omitempty"`
}

// PartitionConfig is how to reach AWS for roles of a partition other than
// Config.Partition. Empty fields take the defaults of that partition: its
// default region, the web-identity path (Warden signs SAML for one
// partition only), the regional STS endpoint and its federation endpoint.
type PartitionConfig struct {
	Region             string `yaml:"region,omitempty"`
	Via                string `yaml:"via,omitempty"`
	STSEndpoint        string `yaml:"sts_endpoint,omitempty"`
	FederationEndpoint string `yaml:"federation_endpoint,omitempty"`
}

// Target is how to reach AWS for one role: its partition, region, STS
// path and endpoints ("" = the partition's own).
type Target struct {
	Partition, Region, Via, STSEndpoint, FederationEndpoint string
}

// Target returns the settings for roles of partition ("" is
// Config.Partition): the top-level ones for Config.Partition, else
// Partitions[partition] over that partition's defaults.
func (c Config) Target(partition string) Target {
	if partition == "" || partition == c.Partition {
		return Target{Partition: c.Partition, Region: c.Region, Via: c.Via, STSEndpoint: c.STSEndpoint, FederationEndpoint: c.FederationEndpoint}
	}
	pc := c.Partitions[partition]
	t := Target{Partition: partition, Region: pc.Region, Via: pc.Via, STSEndpoint: pc.STSEndpoint, FederationEndpoint: pc.FederationEndpoint}
	if p, ok := awsfed.LookupPartition(partition); ok && t.Region == "" {
		t.Region = p.DefaultRegion
	}
	if t.Via == "" {
		t.Via = ViaWebIdentity
	}
	return t
}

// Via values.
const (
	ViaSAML        = "saml"
	ViaWebIdentity = "web-identity"
)

// SetDefaults fills empty fields with their defaults.
func (c *Config) SetDefaults() {
	if c.Partition == "" {
		c.Partition = "aws"
	}
	if c.Region == "" {
		if p, ok := awsfed.LookupPartition(c.Partition); ok {
			c.Region = p.DefaultRegion
		}
	}
	if c.Via == "" {
		c.Via = ViaSAML
	}
	c.IdPURL = strings.TrimRight(c.IdPURL, "/")
}

// Validate reports every problem at once.
func (c Config) Validate() error {
	var errs []error
	if c.IdPURL != "" {
		if err := validIdPURL(c.IdPURL); err != nil {
			errs = append(errs, err)
		}
	}
	if _, ok := awsfed.LookupPartition(c.Partition); !ok {
		errs = append(errs, fmt.Errorf("partition %q: want one of %s", c.Partition, strings.Join(awsfed.PartitionIDs(), ", ")))
	} else if err := awsfed.ValidRegion(c.Partition, c.Region); err != nil {
		errs = append(errs, fmt.Errorf("region: %w", err))
	}
	if c.SessionSeconds != 0 && (c.SessionSeconds < 900 || c.SessionSeconds > 43200) {
		errs = append(errs, fmt.Errorf("session_seconds %d: want 900 to 43200 (0 = the role's own)", c.SessionSeconds))
	}
	if err := validVia(c.Via); err != nil {
		errs = append(errs, err)
	}
	if err := validEndpoint("sts_endpoint", c.STSEndpoint); err != nil {
		errs = append(errs, err)
	}
	if err := validEndpoint("federation_endpoint", c.FederationEndpoint); err != nil {
		errs = append(errs, err)
	}
	for _, id := range awsfed.PartitionIDs() {
		pc, ok := c.Partitions[id]
		if !ok {
			continue
		}
		key := "partitions." + id
		if id == c.Partition {
			errs = append(errs, fmt.Errorf("%s: %s is the configured partition, whose settings are the top-level keys", key, id))
			continue
		}
		if pc.Region != "" {
			if err := awsfed.ValidRegion(id, pc.Region); err != nil {
				errs = append(errs, fmt.Errorf("%s.region: %w", key, err))
			}
		}
		if pc.Via != "" {
			if err := validVia(pc.Via); err != nil {
				errs = append(errs, fmt.Errorf("%s.%w", key, err))
			}
		}
		if err := validEndpoint(key+".sts_endpoint", pc.STSEndpoint); err != nil {
			errs = append(errs, err)
		}
		if err := validEndpoint(key+".federation_endpoint", pc.FederationEndpoint); err != nil {
			errs = append(errs, err)
		}
	}
	for _, id := range slices.Sorted(maps.Keys(c.Partitions)) {
		if _, ok := awsfed.LookupPartition(id); !ok {
			errs = append(errs, fmt.Errorf("partitions.%s: unknown partition; want one of %s", id, strings.Join(awsfed.PartitionIDs(), ", ")))
		}
	}
	return errors.Join(errs...)
}

func validVia(v string) error {
	if v != ViaSAML && v != ViaWebIdentity {
		return fmt.Errorf("via %q: want saml or web-identity", v)
	}
	return nil
}

// validEndpoint accepts "" and http(s) URLs without query or user info.
func validEndpoint(key, v string) error {
	if v == "" {
		return nil
	}
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil || u.RawQuery != "" {
		return fmt.Errorf("%s %q: want an http(s) URL", key, v)
	}
	return nil
}

// validIdPURL accepts https URLs, and http only on loopback (tests, dev).
func validIdPURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("idp_url %q: want https://host[/path]", s)
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		host := u.Hostname()
		if ip := net.ParseIP(host); (ip != nil && ip.IsLoopback()) || host == "localhost" {
			return nil
		}
		return fmt.Errorf("idp_url %q: plain http only on loopback; use https", s)
	}
	return fmt.Errorf("idp_url %q: want https://host[/path]", s)
}

func (a *App) configPath() string { return credcache.ConfigPath(a.ConfigDir) }

// LoadConfig reads ConfigDir/config.yaml strictly (unknown keys are errors)
// and applies the defaults. A missing file is the defaults.
func (a *App) LoadConfig() (Config, error) {
	c, _, err := a.loadConfig()
	return c, err
}

// loadConfig is LoadConfig that also returns the bytes it parsed (nil for
// a missing file).
func (a *App) loadConfig() (Config, []byte, error) {
	var c Config
	b, err := os.ReadFile(a.configPath())
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return c, nil, fmt.Errorf("config: %w", err)
	}
	if len(bytes.TrimSpace(b)) > 0 {
		dec := yaml.NewDecoder(bytes.NewReader(b))
		dec.KnownFields(true)
		if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
			return c, nil, fmt.Errorf("config %s: %w", a.configPath(), err)
		}
	}
	c.SetDefaults()
	if err := c.Validate(); err != nil {
		return c, nil, fmt.Errorf("config %s: %w", a.configPath(), err)
	}
	return c, b, nil
}

// SaveConfig validates c and writes it to ConfigDir/config.yaml (0600, the
// directory 0700), atomically.
func (a *App) SaveConfig(c Config) error {
	c.SetDefaults()
	if err := c.Validate(); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	b, err := yaml.Marshal(c)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	if a.ConfigDir == "" {
		return errors.New("config: no config directory (set WARDEN_CONFIG_DIR)")
	}
	return WriteFileAtomic(a.configPath(), append([]byte("# warden CLI configuration (warden configure)\n"), b...))
}

func configureCmd(a *App) *cobra.Command {
	var f Config
	cmd := &cobra.Command{
		Use:   "configure",
		Short: "Set the IdP URL, default region, partition, session length and STS path",
		Long: `Writes the warden configuration file (config.yaml in the user's config
directory, mode 0600). Flags set values directly; on a terminal, every value
not given as a flag is asked for, with the current value as the default.

--partition is the AWS partition Warden's SAML sign-in serves; --region, --via,
--sts-endpoint and --federation-endpoint apply to its roles. Roles of the other
partitions use their partition's default region and web identity, unless the
file's "partitions:" section says otherwise (see docs/cli.md).`,
		Example: "  warden configure --idp-url https://idp.example.com --region eu-west-1",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cur, err := a.LoadConfig()
			if err != nil {
				// A broken file is replaced by what the user gives now.
				fmt.Fprintf(a.Stderr, "warning: %v; starting from the defaults\n", err)
				cur = Config{}
				cur.SetDefaults()
			}
			fl := cmd.Flags()
			set := func(name string) bool { return fl.Changed(name) }
			if set("idp-url") {
				cur.IdPURL = f.IdPURL
			}
			if set("region") {
				cur.Region = f.Region
			}
			if set("partition") {
				cur.Partition = f.Partition
			}
			if set("session-seconds") {
				cur.SessionSeconds = f.SessionSeconds
			}
			if set("via") {
				cur.Via = f.Via
			}
			if set("sts-endpoint") {
				cur.STSEndpoint = f.STSEndpoint
			}
			if set("federation-endpoint") {
				cur.FederationEndpoint = f.FederationEndpoint
			}
			if a.IsTerminal() {
				in := bufio.NewReader(a.Stdin)
				ask := func(flag, label string, v *string) error {
					if set(flag) {
						return nil
					}
					s, err := prompt(in, a.Stderr, label, *v)
					if err != nil {
						return err
					}
					*v = s
					return nil
				}
				sess := strconv.Itoa(cur.SessionSeconds)
				for _, q := range []struct {
					flag, label string
					v           *string
				}{
					{"idp-url", "IdP URL", &cur.IdPURL},
					{"partition", "AWS partition (aws, aws-us-gov, aws-cn)", &cur.Partition},
					{"region", "Default region", &cur.Region},
					{"session-seconds", "Session length in seconds (0 = the role's own)", &sess},
					{"via", "STS path (saml or web-identity)", &cur.Via},
				} {
					if err := ask(q.flag, q.label, q.v); err != nil {
						return err
					}
				}
				if !set("session-seconds") {
					n, err := strconv.Atoi(strings.TrimSpace(sess))
					if err != nil {
						return fmt.Errorf("session length %q: not a number", sess)
					}
					cur.SessionSeconds = n
				}
			}
			if cur.IdPURL == "" {
				return errors.New("configure: --idp-url is required")
			}
			if err := a.SaveConfig(cur); err != nil {
				return err
			}
			fmt.Fprintf(a.Stderr, "Saved %s\n", a.configPath())
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.IdPURL, "idp-url", "", "the Warden IdP's URL (https://idp.example.com)")
	fl.StringVar(&f.Region, "region", "", "default AWS region (default us-east-1)")
	fl.StringVar(&f.Partition, "partition", "", "AWS partition: aws, aws-us-gov or aws-cn")
	fl.IntVar(&f.SessionSeconds, "session-seconds", 0, "default session length in seconds (0 = the role's own, else 3600)")
	fl.StringVar(&f.Via, "via", "", "how to reach STS: saml or web-identity")
	fl.StringVar(&f.STSEndpoint, "sts-endpoint", "", "STS endpoint URL for roles of the partition (empty = the regional endpoint)")
	fl.StringVar(&f.FederationEndpoint, "federation-endpoint", "", "AWS console federation endpoint URL for roles of the partition (empty = AWS's)")
	return cmd
}

// prompt asks on w and reads one line from in; an empty answer keeps def.
func prompt(in *bufio.Reader, w io.Writer, label, def string) (string, error) {
	if def != "" {
		fmt.Fprintf(w, "%s [%s]: ", label, def)
	} else {
		fmt.Fprintf(w, "%s: ", label)
	}
	line, err := in.ReadString('\n')
	if err != nil && !(errors.Is(err, io.EOF) && line != "") {
		if errors.Is(err, io.EOF) {
			return def, nil
		}
		return "", fmt.Errorf("configure: %w", err)
	}
	if s := strings.TrimSpace(line); s != "" {
		return s, nil
	}
	return def, nil
}
