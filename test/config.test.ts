// Configuration that would quietly weaken SIM Link is refused at start, with a message saying what to set.
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../src/config.js';

const base = { SESSION_SECRET: 'x'.repeat(40), DATA_DIR: '/tmp/simlink-test-unused' };
const load = (env: Record<string, string>) => loadConfig({ ...base, ...env });

describe('TRUST_PROXY', () => {
  it('unset, empty or false trusts no proxy (as before)', () => {
    expect(loadConfig(base).trustProxy).toBe(false);
    for (const value of ['', 'false', 'FALSE', 'no', 'off', '0']) expect(load({ TRUST_PROXY: value }).trustProxy).toBe(false);
  });

  it('a number is how many proxies are in front', () => {
    expect(load({ TRUST_PROXY: '1' }).trustProxy).toBe(1);
    expect(load({ TRUST_PROXY: ' 2 ' }).trustProxy).toBe(2);
    expect(() => load({ TRUST_PROXY: '11' })).toThrow(/from 1 to 10/);
  });

  it('or the proxies’ addresses and CIDRs, IPv4 and IPv6, comma- or space-separated', () => {
    expect(load({ TRUST_PROXY: '10.0.0.0/8,127.0.0.1' }).trustProxy).toEqual(['10.0.0.0/8', '127.0.0.1']);
    expect(load({ TRUST_PROXY: 'fd00::/8 ::1  loopback' }).trustProxy).toEqual(['fd00::/8', '::1', 'loopback']);
    for (const bad of ['10.0.0.0/33', 'proxy.example.com', '10.0.0.1/8/8', '::1/129', '10.0.0/8']) {
      expect(() => load({ TRUST_PROXY: bad }), bad).toThrow(ConfigError);
    }
  });

  it('true is refused, saying what to set instead (it would trust a client-written X-Forwarded-For)', () => {
    for (const value of ['true', 'TRUE', 'yes', 'on']) {
      expect(() => load({ TRUST_PROXY: value })).toThrow(ConfigError);
      expect(() => load({ TRUST_PROXY: value })).toThrow(/TRUST_PROXY=1 .*TRUST_PROXY=10\.0\.0\.0\/8,127\.0\.0\.1/);
    }
  });

  it('an https PUBLIC_URL needs a trusted proxy', () => {
    expect(() => load({ PUBLIC_URL: 'https://simlink.example.com' })).toThrow(/TRUST_PROXY=1/);
    expect(load({ PUBLIC_URL: 'https://simlink.example.com', TRUST_PROXY: '10.0.0.5' }).trustProxy).toEqual(['10.0.0.5']);
  });
});

describe('CRM_ORIGINS', () => {
  it('refuses wildcards, naming the value and what to list instead', () => {
    for (const value of ['*', 'https://*.example.com', 'https://crm.example.com https://*', 'https://crm.*.example.com']) {
      expect(() => load({ CRM_ORIGINS: value }), value).toThrow(ConfigError);
      expect(() => load({ CRM_ORIGINS: value }), value).toThrow(/cannot hold wildcards .*list each CRM origin exactly/);
    }
    expect(load({ CRM_ORIGINS: 'https://crm.example.com' }).crmOrigins).toEqual(['https://crm.example.com']);
  });
});

describe('CRM_LAUNCH_TOP_LEVEL', () => {
  it('is off unless set; true or false only', () => {
    expect(loadConfig(base).crmLaunchTopLevel).toBe(false);
    expect(load({ CRM_LAUNCH_TOP_LEVEL: 'true' }).crmLaunchTopLevel).toBe(true);
    expect(() => load({ CRM_LAUNCH_TOP_LEVEL: 'sometimes' })).toThrow(/CRM_LAUNCH_TOP_LEVEL must be true or false/);
  });
});
