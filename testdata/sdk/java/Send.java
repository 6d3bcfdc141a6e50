// Sends every Segment call type with the official Java SDK, unchanged, to the
// gateway at HOST with WRITE_KEY: java Send HOST WRITE_KEY. Exits non-zero
// when the SDK reports a failure or does not report every message in time.

import com.segment.analytics.Analytics;
import com.segment.analytics.Callback;
import com.segment.analytics.messages.AliasMessage;
import com.segment.analytics.messages.GroupMessage;
import com.segment.analytics.messages.IdentifyMessage;
import com.segment.analytics.messages.Message;
import com.segment.analytics.messages.PageMessage;
import com.segment.analytics.messages.ScreenMessage;
import com.segment.analytics.messages.TrackMessage;
import java.time.Instant;
import java.util.Date;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

public class Send {
  public static void main(String[] args) throws InterruptedException {
    String host = args[0];
    String writeKey = args[1];
    CountDownLatch reported = new CountDownLatch(6);
    AtomicInteger failures = new AtomicInteger();
    Analytics analytics =
        Analytics.builder(writeKey)
            .endpoint(host)
            .flushQueueSize(100)
            .flushInterval(1, TimeUnit.SECONDS)
            .retries(1)
            .callback(
                new Callback() {
                  @Override
                  public void success(Message message) {
                    reported.countDown();
                  }

                  @Override
                  public void failure(Message message, Throwable err) {
                    System.err.println("analytics-java failure: " + message.messageId() + ": " + err);
                    failures.incrementAndGet();
                    reported.countDown();
                  }
                })
            .build();

    Date timestamp = Date.from(Instant.parse("2026-11-22T11:00:00.123Z"));
    Map<String, Object> traits = new LinkedHashMap<>();
    traits.put("email", "ada@example.com");
    traits.put("firstName", "Ada");
    traits.put("Plan Type", "pro");
    traits.put("plan type", "free");
    traits.put("gone", null);
    analytics.enqueue(IdentifyMessage.builder().messageId("sdk-identify").userId("u-1").timestamp(timestamp).traits(traits));

    Map<String, Object> order = new LinkedHashMap<>();
    order.put("revenue", 42.5);
    order.put("currency", "EUR");
    analytics.enqueue(TrackMessage.builder("Order Completed").messageId("sdk-track").userId("u-1").timestamp(timestamp).properties(order));

    Map<String, Object> page = new LinkedHashMap<>();
    page.put("url", "https://example.com/pricing");
    page.put("category", "Docs");
    analytics.enqueue(PageMessage.builder("Pricing").messageId("sdk-page").anonymousId("anon-1").timestamp(timestamp).properties(page));

    analytics.enqueue(ScreenMessage.builder("Home").messageId("sdk-screen").userId("u-1").timestamp(timestamp));

    Map<String, Object> company = new LinkedHashMap<>();
    company.put("name", "Acme");
    company.put("website", "https://www.acme.example/");
    analytics.enqueue(GroupMessage.builder("acme").messageId("sdk-group").userId("u-1").timestamp(timestamp).traits(company));

    analytics.enqueue(AliasMessage.builder("anon-1").messageId("sdk-alias").userId("u-1").timestamp(timestamp));

    analytics.flush();
    boolean all = reported.await(30, TimeUnit.SECONDS);
    analytics.shutdown();
    if (!all) {
      System.err.println("analytics-java reported " + (6 - reported.getCount()) + " of 6 messages in 30 s");
      System.exit(1);
    }
    System.exit(failures.get() > 0 ? 1 : 0);
  }
}
