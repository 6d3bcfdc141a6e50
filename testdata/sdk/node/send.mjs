// Sends every Segment call type with the official Node.js SDK, unchanged,
// to the gateway at HOST with WRITE_KEY: node send.mjs HOST WRITE_KEY.
// Exits non-zero when the SDK reports an error.
import { Analytics } from '@segment/analytics-node'

const [host, writeKey] = process.argv.slice(2)
const analytics = new Analytics({ writeKey, host, maxEventsInBatch: 100, flushInterval: 50, maxRetries: 0 })
let failed = false
analytics.on('error', (err) => {
  failed = true
  console.error('analytics-node error:', err.code ?? '', err.reason ?? err.message ?? err)
})

const timestamp = new Date('2026-11-22T11:00:00.123Z')
analytics.identify({
  messageId: 'sdk-identify', userId: 'u-1', timestamp,
  traits: { email: 'ada@example.com', firstName: 'Ada', 'Plan Type': 'pro', 'plan type': 'free', gone: null },
})
analytics.track({
  messageId: 'sdk-track', userId: 'u-1', event: 'Order Completed', timestamp,
  properties: { revenue: 42.5, currency: 'EUR' },
})
analytics.page({
  messageId: 'sdk-page', anonymousId: 'anon-1', name: 'Pricing', timestamp,
  properties: { url: 'https://example.com/pricing', category: 'Docs' },
})
analytics.screen({ messageId: 'sdk-screen', userId: 'u-1', name: 'Home', timestamp })
analytics.group({
  messageId: 'sdk-group', userId: 'u-1', groupId: 'acme', timestamp,
  traits: { name: 'Acme', website: 'https://www.acme.example/' },
})
analytics.alias({ messageId: 'sdk-alias', userId: 'u-1', previousId: 'anon-1', timestamp })

await analytics.closeAndFlush({ timeout: 20000 })
process.exit(failed ? 1 : 0)
