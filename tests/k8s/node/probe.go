package node

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/kubernetes/pkg/kubelet/events"
)

// probeReadiness runs c's readiness probe as the kubelet's prober does
// (initial delay, period, timeout, success and failure thresholds) until
// proc ends, keeping c's Ready and the pod's Ready condition up to date.
// httpGet and tcpSocket probes dial 127.0.0.1 (pods share the host's
// network); an exec or gRPC probe is not simulated and counts as passing.
func (s *sandbox) probeReadiness(c *ctr, proc *process) {
	p := c.spec.ReadinessProbe
	check := s.prober(c, p)
	period := seconds(p.PeriodSeconds, 10)
	timeout := seconds(p.TimeoutSeconds, 1)
	successes, failures := 0, 0
	successThreshold, failureThreshold := threshold(p.SuccessThreshold, 1), threshold(p.FailureThreshold, 3)
	wait := time.Duration(p.InitialDelaySeconds) * time.Second
	for {
		select {
		case <-proc.done:
			return
		case <-s.ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = period
		ctx, cancel := context.WithTimeout(s.ctx, timeout)
		err := check(ctx)
		cancel()
		if err == nil {
			successes, failures = successes+1, 0
		} else {
			successes, failures = 0, failures+1
			s.containerEvent(c, v1.EventTypeWarning, events.ContainerUnhealthy, "Readiness probe failed: %v", err)
		}
		ready := successes >= successThreshold
		if !ready && failures < failureThreshold {
			continue
		}
		s.mu.Lock()
		changed := c.status.Ready != ready && c.proc == proc
		if changed {
			c.status.Ready = ready
			s.refreshReadyLocked()
		}
		s.mu.Unlock()
		if changed {
			s.update()
		}
	}
}

// prober is one attempt of probe p against container c.
func (s *sandbox) prober(c *ctr, p *v1.Probe) func(context.Context) error {
	switch {
	case p.HTTPGet != nil:
		get := p.HTTPGet
		scheme := "http"
		if get.Scheme == v1.URISchemeHTTPS {
			scheme = "https"
		}
		host := get.Host
		if host == "" {
			host = "127.0.0.1"
		}
		// As the kubelet: a probe does not verify the server's certificate.
		client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
		return func(ctx context.Context) error {
			port, err := containerPort(c, get.Port.String(), get.Port.IntValue())
			if err != nil {
				return err
			}
			url := fmt.Sprintf("%s://%s%s", scheme, net.JoinHostPort(host, strconv.Itoa(port)), get.Path)
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
			if err != nil {
				return err
			}
			for _, h := range get.HTTPHeaders {
				req.Header.Add(h.Name, h.Value)
			}
			resp, err := client.Do(req)
			if err != nil {
				return fmt.Errorf("Get %q: %w", url, err)
			}
			resp.Body.Close()
			if resp.StatusCode < 200 || resp.StatusCode >= 400 {
				return fmt.Errorf("HTTP probe failed with statuscode: %d", resp.StatusCode)
			}
			return nil
		}
	case p.TCPSocket != nil:
		sock := p.TCPSocket
		return func(ctx context.Context) error {
			port, err := containerPort(c, sock.Port.String(), sock.Port.IntValue())
			if err != nil {
				return err
			}
			host := sock.Host
			if host == "" {
				host = "127.0.0.1"
			}
			conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", net.JoinHostPort(host, strconv.Itoa(port)))
			if err != nil {
				return err
			}
			return conn.Close()
		}
	default:
		return func(context.Context) error { return nil }
	}
}

// containerPort resolves a probe's port: a number, or the name of one of c's ports.
func containerPort(c *ctr, name string, number int) (int, error) {
	if number > 0 {
		return number, nil
	}
	for _, p := range c.spec.Ports {
		if p.Name == name {
			return int(p.ContainerPort), nil
		}
	}
	return 0, fmt.Errorf("container %q has no port named %q", c.spec.Name, name)
}

func seconds(n int32, def int32) time.Duration {
	if n <= 0 {
		n = def
	}
	return time.Duration(n) * time.Second
}

func threshold(n int32, def int32) int {
	if n <= 0 {
		return int(def)
	}
	return int(n)
}
