// RingBuffer: consumes a BPF_MAP_TYPE_RINGBUF on its own thread (epoll on the ring + an eventfd
// for stop) and delivers records to a JS callback through a ThreadSafeFunction, one call per
// consume round with an array of Buffers (batching keeps the cost per record low). The JS object
// stays alive while open (strong self-reference), so dropping it does not silently stop events.
// close() stops and joins the thread before freeing the ring; the env cleanup hook does the same.
//
// Backpressure (docs/security.md, "Event budgets"): a round takes at most `maxBatch` records, and the next round
// starts only once JS calls next() after the previous batch (the TS wrapper does so from a
// setImmediate, i.e. after the event loop has polled for I/O: a thread-safe function alone
// would dispatch up to 1000 queued calls in one loop turn). So the event loop never holds more
// than one bounded batch of records, other work (datastore changes) runs between batches, and a
// producer faster than JS fills the kernel ring, whose overflow the BPF side counts, instead of
// the agent's heap.
#include "common.h"

#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>

namespace tortie {
namespace {

// One batch in flight at a time: the poller waits on this until JS is done with the last one.
// Shared with each batch, so a batch delivered after the wrapper is gone touches no freed memory.
struct Gate {
  std::mutex mu;
  std::condition_variable cv;
  bool inflight = false;
  bool stop = false;
  void Done() {
    std::lock_guard<std::mutex> lk(mu);
    inflight = false;
    cv.notify_one();
  }
};

struct Batch : std::vector<std::vector<uint8_t>> {
  std::shared_ptr<Gate> gate;
};

class RingBufferWrap : public Napi::ObjectWrap<RingBufferWrap> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "RingBuffer", {
      InstanceMethod<&RingBufferWrap::Close>("close"),
      InstanceMethod<&RingBufferWrap::RefJs>("ref"),
      InstanceMethod<&RingBufferWrap::UnrefJs>("unref"),
      InstanceMethod<&RingBufferWrap::Stats>("stats"),
      InstanceMethod<&RingBufferWrap::NextJs>("next"),
    });
  }

  // new RingBuffer(mapFd, callback(records: Buffer[]), maxBatch?)
  explicit RingBufferWrap(const Napi::CallbackInfo &info) : Napi::ObjectWrap<RingBufferWrap>(info) {
    Napi::Env env = info.Env();
    try {
      int fd = ArgInt(info, 0, "mapFd");
      if (!info[1].IsFunction()) Fail("ERR_BPF_INVALID_ARG", "argument", EINVAL, "argument 1 (callback) must be a function");
      if (info.Length() > 2 && !info[2].IsUndefined()) {
        int mb = ArgInt(info, 2, "maxBatch");
        if (mb < 1) Fail("ERR_BPF_INVALID_ARG", "argument", EINVAL, "argument 2 (maxBatch) must be >= 1");
        maxBatch_ = static_cast<size_t>(mb);
      }
      if (FdKindOf(fd) != FdKind::Map || QueryMapMeta(fd).type != BPF_MAP_TYPE_RINGBUF)
        Fail("ERR_BPF_RINGBUF", "ring_buffer__new", EINVAL, "fd " + std::to_string(fd) + " is not a ring buffer map");
      mapFd_ = fcntl(fd, F_DUPFD_CLOEXEC, 3);
      if (mapFd_ < 0) Fail("ERR_BPF_RINGBUF", "fcntl", errno, "duplicate ring buffer fd");
      LogCapture cap;
      rb_ = ring_buffer__new(mapFd_, OnSample, this, nullptr);
      if (rb_ == nullptr) Fail("ERR_BPF_RINGBUF", "ring_buffer__new", errno ? errno : EINVAL, "set up ring buffer on fd " + std::to_string(fd), cap.Take());
      stopFd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
      epFd_ = epoll_create1(EPOLL_CLOEXEC);
      if (stopFd_ < 0 || epFd_ < 0) Fail("ERR_BPF_RINGBUF", "eventfd/epoll_create1", errno, "set up ring buffer poller");
      struct epoll_event ev = {};
      ev.events = EPOLLIN;
      ev.data.fd = ring_buffer__epoll_fd(rb_);
      if (epoll_ctl(epFd_, EPOLL_CTL_ADD, ev.data.fd, &ev) != 0) Fail("ERR_BPF_RINGBUF", "epoll_ctl", errno, "watch ring buffer");
      ev.data.fd = stopFd_;
      if (epoll_ctl(epFd_, EPOLL_CTL_ADD, stopFd_, &ev) != 0) Fail("ERR_BPF_RINGBUF", "epoll_ctl", errno, "watch stop eventfd");
      batch_ = new Batch();
      tsfn_ = Napi::ThreadSafeFunction::New(env, info[1].As<Napi::Function>(), "tortie:ringbuf", 0, 1);
      try {
        thread_ = std::thread([this] { Run(); });
      } catch (...) {
        tsfn_.Release();  // otherwise it would keep the event loop alive
        throw;
      }
    } catch (const BpfFailure &f) {
      FreeFds();
      throw MakeError(env, f);
    } catch (const Napi::Error &) {
      FreeFds();
      throw;
    } catch (const std::exception &e) {
      FreeFds();
      throw MakeError(env, "ERR_BPF_RINGBUF", "ring_buffer__new", e);
    }
    Ref();  // strong while open
    env_ = env;
    napi_add_env_cleanup_hook(env_, CleanupHook, this);
    open_ = true;
  }

  ~RingBufferWrap() override { Stop(false); }

 private:
  // A negative return stops ring_buffer__consume after this record (libbpf has already moved
  // the consumer position past it): the batch is full.
  static constexpr int kBatchFull = -E2BIG;
  static int OnSample(void *ctx, void *data, size_t size) {
    auto *self = static_cast<RingBufferWrap *>(ctx);
    const uint8_t *p = static_cast<const uint8_t *>(data);
    self->batch_->emplace_back(p, p + size);
    self->records_++;
    return self->batch_->size() >= self->maxBatch_ ? kBatchFull : 0;
  }

  // Called on the JS thread (or with env == nullptr while closing): delivers; the next round
  // waits for next() from JS, except when nothing could call it (closing, no callback).
  static void CallJs(Napi::Env env, Napi::Function cb, Batch *b) {
    std::shared_ptr<Gate> gate = b->gate;
    if (env == nullptr || cb == nullptr) {
      delete b;
      if (gate) gate->Done();
      return;
    }
    {
      try {
        Napi::Array arr = Napi::Array::New(env, b->size());
        for (size_t i = 0; i < b->size(); i++)
          arr.Set(static_cast<uint32_t>(i), Napi::Buffer<uint8_t>::Copy(env, (*b)[i].data(), (*b)[i].size()));
        cb.Call({arr});
      } catch (const Napi::Error &e) {
        e.ThrowAsJavaScriptException();  // the JS callback threw: surface it as uncaught
      } catch (...) {
      }
    }
    delete b;
  }

  // Waits until JS has finished the previous batch (or stop). False: stopping.
  bool WaitIdle() {
    std::unique_lock<std::mutex> lk(gate_->mu);
    gate_->cv.wait(lk, [this] { return !gate_->inflight || gate_->stop; });
    return !gate_->stop;
  }

  void Run() {
    struct epoll_event evs[2];
    while (!stop_.load()) {
      if (!WaitIdle()) break;
      int n = epoll_wait(epFd_, evs, 2, -1);
      if (n < 0) {
        if (errno == EINTR) continue;
        break;
      }
      bool stop = false;
      for (int i = 0; i < n; i++) if (evs[i].data.fd == stopFd_) stop = true;
      ring_buffer__consume(rb_);  // at most maxBatch_ records (OnSample)
      if (!batch_->empty()) {
        Batch *b = batch_;
        b->gate = gate_;
        batch_ = new Batch();
        batches_++;
        {
          std::lock_guard<std::mutex> lk(gate_->mu);
          gate_->inflight = true;
        }
        if (tsfn_.NonBlockingCall(b, CallJs) != napi_ok) {  // closing: drop
          delete b;
          gate_->Done();
        }
      }
      if (stop) break;
    }
  }

  void FreeFds() {
    if (rb_ != nullptr) { ring_buffer__free(rb_); rb_ = nullptr; }
    if (epFd_ >= 0) { close(epFd_); epFd_ = -1; }
    if (stopFd_ >= 0) { close(stopFd_); stopFd_ = -1; }
    if (mapFd_ >= 0) { close(mapFd_); mapFd_ = -1; }
    delete batch_;
    batch_ = nullptr;
  }

  // Stops the poller. Records still in the ring are not delivered (nor would JS take them after
  // close()); a batch already queued to JS is dropped there.
  void Stop(bool fromJs) {
    if (!open_) return;
    open_ = false;
    {
      std::lock_guard<std::mutex> lk(gate_->mu);
      stop_.store(true);
      gate_->stop = true;
      gate_->cv.notify_one();
    }
    uint64_t one = 1;
    if (write(stopFd_, &one, sizeof(one)) < 0) { /* eventfd write cannot fail short of overflow */ }
    if (thread_.joinable()) thread_.join();
    FreeFds();
    tsfn_.Release();
    if (hooked_) {
      napi_remove_env_cleanup_hook(env_, CleanupHook, this);
      hooked_ = false;
    }
    if (fromJs) Unref();
  }

  static void CleanupHook(void *arg) {
    auto *self = static_cast<RingBufferWrap *>(arg);
    self->hooked_ = false;
    self->Stop(false);
  }

  Napi::Value Close(const Napi::CallbackInfo &info) {
    return Guarded(info, "ERR_BPF_RINGBUF", "ring_buffer__free", [&]() -> Napi::Value {
      Stop(true);
      return info.Env().Undefined();
    });
  }
  Napi::Value RefJs(const Napi::CallbackInfo &info) {
    return Guarded(info, "ERR_BPF_RINGBUF", "ref", [&]() -> Napi::Value {
      if (open_) tsfn_.Ref(info.Env());
      return info.Env().Undefined();
    });
  }
  Napi::Value UnrefJs(const Napi::CallbackInfo &info) {
    return Guarded(info, "ERR_BPF_RINGBUF", "unref", [&]() -> Napi::Value {
      if (open_) tsfn_.Unref(info.Env());
      return info.Env().Undefined();
    });
  }
  Napi::Value NextJs(const Napi::CallbackInfo &info) {
    gate_->Done();
    return info.Env().Undefined();
  }
  Napi::Value Stats(const Napi::CallbackInfo &info) {
    return Guarded(info, "ERR_BPF_RINGBUF", "stats", [&]() -> Napi::Value {
      Napi::Object o = Napi::Object::New(info.Env());
      o.Set("records", static_cast<double>(records_.load()));
      o.Set("batches", static_cast<double>(batches_.load()));
      o.Set("open", open_);
      return o;
    });
  }

  ring_buffer *rb_ = nullptr;
  int mapFd_ = -1, stopFd_ = -1, epFd_ = -1;
  std::thread thread_;
  Napi::ThreadSafeFunction tsfn_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> records_{0}, batches_{0};
  Batch *batch_ = nullptr;  // touched by the poller thread only while it runs
  size_t maxBatch_ = 256;
  std::shared_ptr<Gate> gate_ = std::make_shared<Gate>();
  bool open_ = false, hooked_ = true;
  napi_env env_ = nullptr;
};

}  // namespace

void InitRingBuffer(Napi::Env env, Napi::Object exports) {
  exports.Set("RingBuffer", RingBufferWrap::Define(env));
}

}  // namespace tortie
