#include "sidecar/injector/injector_server.h"

#include <memory>
#include <string>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "sidecar/common/descriptors.h"
#include "sidecar/common/logging.h"
#include "sidecar/common/mutex.h"
#include "sidecar/common/signals.h"
#include "sidecar/injector/admission.h"
#include "sidecar/injector/certificate_store.h"
#include "sidecar/injector/webhook_server.h"
#include "sidecar/metrics/registry.h"
#include "sidecar/server/probe_server.h"

namespace credsync::injector {
namespace {

constexpr int kExitOk = 0;
constexpr int kExitFailed = 1;

double unixSeconds(absl::Time time) { return absl::ToDoubleSeconds(time - absl::UnixEpoch()); }

// The injector's Prometheus metrics: counted as admissions and certificate
// checks happen, plus the webhook server's connection counters read at
// scrape time. Thread-safe.
class InjectorMetrics {
 public:
  InjectorMetrics()
      : admissions_(registry_.addCounter(
            "credsync_injector_admissions_total",
            "Admission reviews answered, by result (injected, skipped, denied, malformed) and "
            "whether the request was a dry run.",
            {"result", "dry_run"})),
        duration_(registry_.addHistogram(
            "credsync_injector_admission_duration_seconds",
            "Time to answer one admission review, from its whole body to its answer.", {},
            {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1})),
        reloads_(registry_.addCounter(
            "credsync_injector_certificate_reloads_total",
            "Changed certificate files: loaded (new handshakes use them) or rejected (unusable; "
            "the previous certificate stays).",
            {"result"})),
        not_after_(
            registry_.addGauge("credsync_injector_certificate_not_after_timestamp_seconds",
                               "Unix time at which the serving certificate in use expires.")) {
    for (AdmissionResult result : {AdmissionResult::kInjected, AdmissionResult::kSkipped,
                                   AdmissionResult::kDenied, AdmissionResult::kMalformed}) {
      for (absl::string_view dry_run : {"false", "true"}) {
        admissions_.initialize({resultName(result), dry_run});
      }
    }
    reloads_.initialize({"loaded"});
    reloads_.initialize({"rejected"});
  }

  void admission(const AdmissionAnswer& answer, absl::Duration took) {
    admissions_.increment({resultName(answer.result), answer.dry_run ? "true" : "false"});
    duration_.observe({}, absl::ToDoubleSeconds(took));
  }
  void certificateLoaded(absl::Time not_after) {
    reloads_.increment({"loaded"});
    certificateInUse(not_after);
  }
  void certificateRejected() { reloads_.increment({"rejected"}); }
  void certificateInUse(absl::Time not_after) { not_after_.set({}, unixSeconds(not_after)); }

  std::string render(const WebhookServerStats& stats) const {
    std::string out = registry_.render();
    // Rebuilt every scrape from the server's running totals.
    metrics::Registry scrape;
    scrape.addGauge("credsync_injector_open_connections", "Webhook connections open now.")
        .set({}, static_cast<double>(stats.open_connections));
    scrape
        .addGauge("credsync_injector_buffered_body_bytes",
                  "Request body bytes reserved now (announced by requests being read or "
                  "answered); at most the server's budget.")
        .set({}, static_cast<double>(stats.buffered_body_bytes));
    metrics::setCount(scrape.addCounter("credsync_injector_connections_accepted_total",
                                        "Webhook connections accepted."),
                      {}, stats.accepted);
    metrics::Counter& closed = scrape.addCounter(
        "credsync_injector_connections_closed_total",
        "Webhook connections closed by the injector: shed (to admit a newer one at the "
        "connection limit), body_budget (still receiving its body, to make room for a newer "
        "request's in the bytes buffered at once), timeout (no handshake, whole request, or "
        "read answer in time), tls_handshake_failed.",
        {"reason"});
    metrics::setCount(closed, {"shed"}, stats.shed);
    metrics::setCount(closed, {"body_budget"}, stats.shed_for_body_budget);
    metrics::setCount(closed, {"timeout"}, stats.timed_out);
    metrics::setCount(closed, {"tls_handshake_failed"}, stats.tls_handshake_failed);
    metrics::setCount(
        scrape.addCounter("credsync_injector_connections_refused_total",
                          "Webhook connections closed as they were accepted, to keep the "
                          "descriptor reserve.",
                          {"reason"}),
        {"descriptor_reserve"}, stats.refused_for_descriptors);
    metrics::Counter& rejected =
        scrape.addCounter("credsync_injector_requests_rejected_total",
                          "Requests answered 503: busy (whole, and every worker was busy and "
                          "the queue full) or memory (its body did not fit in the bytes the "
                          "server buffers at once, held by bodies already whole; refused "
                          "unread).",
                          {"reason"});
    metrics::setCount(rejected, {"busy"}, stats.rejected_busy);
    metrics::setCount(rejected, {"memory"}, stats.rejected_memory);
    scrape
        .addGauge("credsync_build_info", "Always 1; the version label names the running build.",
                  {"version"})
        .set({CREDSYNC_VERSION}, 1);
    scrape.renderTo(out);
    return out;
  }

 private:
  metrics::Registry registry_;
  metrics::Counter& admissions_;
  metrics::Histogram& duration_;
  metrics::Counter& reloads_;
  metrics::Gauge& not_after_;
};

// Checks the certificate files every `interval` on its own thread until
// destroyed.
class CertificateWatcher {
 public:
  CertificateWatcher(CertificateStore& store, InjectorMetrics& metrics, absl::Duration interval)
      : store_(store), metrics_(metrics), interval_(interval) {
    thread_ = std::thread([this] { run(); });
  }
  ~CertificateWatcher() {
    {
      MutexLock lock(&mutex_);
      stopping_ = true;
    }
    thread_.join();
  }

 private:
  void run() {
    for (;;) {
      {
        MutexLock lock(&mutex_);
        if (mutex_.AwaitWithTimeout(Condition(&stopping_), interval_)) return;
      }
      const CertificateReloadResult result = store_.checkForChange();
      if (result.outcome == CertificateReload::kLoaded) {
        const std::shared_ptr<const CertificatePair> pair = store_.current();
        metrics_.certificateLoaded(pair->not_after);
        log::info("serving certificate reloaded",
                  {{"cert_file", store_.certFile()},
                   {"not_after", absl::FormatTime(pair->not_after)},
                   {"generation", static_cast<unsigned long>(pair->generation)}});
      } else if (result.outcome == CertificateReload::kRejected) {
        metrics_.certificateRejected();
        log::warn("certificate files rejected; keeping the previous certificate",
                  {{"error", result.error.message()}});
      }
    }
  }

  CertificateStore& store_;
  InjectorMetrics& metrics_;
  const absl::Duration interval_;
  Mutex mutex_;
  bool stopping_ ABSL_GUARDED_BY(mutex_) = false;
  std::thread thread_;
};

}  // namespace

int serveInjector(const ServeOptions& options, const InjectionSettings& settings,
                  const TimeSource& time_source) {
  // Before any thread exists, so that only waitForStopSignal() sees them.
  blockStopSignals();
  absl::StatusOr<log::Level> level = log::parseLevel(options.log_level);
  if (!level.ok()) {
    log::error("cannot start", {{"error", level.status().message()}});
    return kExitFailed;
  }
  log::setLevel(*level);
  raiseDescriptorLimit();

  absl::StatusOr<std::unique_ptr<CertificateStore>> store =
      CertificateStore::load(options.cert_file, options.key_file);
  if (!store.ok()) {
    log::error("cannot start", {{"error", store.status().message()}});
    return kExitFailed;
  }
  InjectorMetrics metrics;
  metrics.certificateInUse((*store)->current()->not_after);

  WebhookHandler handler = [&settings, &time_source, &metrics](const WebhookRequest& request) {
    const MonotonicTime started = time_source.monotonicTime();
    AdmissionAnswer answer = reviewAdmission(request.body, settings);
    metrics.admission(answer, absl::FromChrono(time_source.monotonicTime() - started));
    // The summary holds names only, never a value of the pod (admission.h).
    const log::Fields fields = {{"result", resultName(answer.result)},
                                {"dry_run", answer.dry_run},
                                {"summary", answer.summary}};
    if (answer.result == AdmissionResult::kDenied || answer.result == AdmissionResult::kMalformed) {
      log::info("admission refused", fields);
    } else {
      log::debug("admission answered", fields);
    }
    return WebhookResponse{answer.http_status, std::move(answer.content_type),
                           std::move(answer.body)};
  };
  absl::StatusOr<std::unique_ptr<WebhookServer>> webhook =
      WebhookServer::start(options.listen_address, std::move(handler), **store, time_source);
  if (!webhook.ok()) {
    log::error("cannot start", {{"error", webhook.status().message()}});
    return kExitFailed;
  }
  WebhookServer& server = **webhook;

  server::ProbeHandlers probes;
  probes.live = [&server] { return server.serving(); };
  probes.ready = [&server] {
    server::Readiness readiness;
    // The store holds a valid pair from the start on; the listener is what
    // can be down.
    readiness.ready = server.serving();
    if (!readiness.ready) readiness.detail = "webhook listener not serving";
    return readiness;
  };
  probes.metrics = [&metrics, &server] { return metrics.render(server.stats()); };
  absl::StatusOr<std::unique_ptr<server::ProbeServer>> probe_server =
      server::ProbeServer::start(options.http_address, std::move(probes), time_source);
  if (!probe_server.ok()) {
    log::error("cannot start", {{"error", probe_server.status().message()}});
    return kExitFailed;
  }

  {
    CertificateWatcher watcher(**store, metrics, options.cert_check_interval);
    log::info("injector serving",
              {{"listen", server.address()},
               {"http_address", (*probe_server)->address()},
               {"cert_file", options.cert_file},
               {"not_after", absl::FormatTime((*store)->current()->not_after)}});
    log::info("stopping", {{"signal", waitForStopSignal()}});
  }
  // Reviews in flight are answered (WebhookServerOptions::stop_grace); the
  // probes answer until the webhook is down.
  server.stop();
  (*probe_server)->stop();
  return kExitOk;
}

}  // namespace credsync::injector
