// RingBuffer: consumes a BPF_MAP_TYPE_RINGBUF on its own thread (epoll on the ring + an eventfd
// for stop) and delivers records to a JS callback through a ThreadSafeFunction, one call per
// consume round with an array of Buffers (batching keeps the cost per record low). The JS object
// stays alive while open (strong self-reference), so dropping it does not silently stop events.
// close() stops and joins the thread before freeing the ring; the env cleanup hook does the same.
#include "common.h"

#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <thread>

namespace tortie {
namespace {

using Batch = std::vector<std::vector<uint8_t>>;

class RingBufferWrap : public Napi::ObjectWrap<RingBufferWrap> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "RingBuffer", {
      InstanceMethod<&RingBufferWrap::Close>("close"),
      InstanceMethod<&RingBufferWrap::RefJs>("ref"),
      InstanceMethod<&RingBufferWrap::UnrefJs>("unref"),
      InstanceMethod<&RingBufferWrap::Stats>("stats"),
    });
  }

  // new RingBuffer(mapFd, callback(records: Buffer[]))
  explicit RingBufferWrap(const Napi::CallbackInfo &info) : Napi::ObjectWrap<RingBufferWrap>(info) {
    Napi::Env env = info.Env();
    try {
      int fd = ArgInt(info, 0, "mapFd");
      if (!info[1].IsFunction()) Fail("ERR_BPF_INVALID_ARG", "argument", EINVAL, "argument 1 (callback) must be a function");
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
  static int OnSample(void *ctx, void *data, size_t size) {
    auto *self = static_cast<RingBufferWrap *>(ctx);
    const uint8_t *p = static_cast<const uint8_t *>(data);
    self->batch_->emplace_back(p, p + size);
    self->records_++;
    return 0;
  }

  static void CallJs(Napi::Env env, Napi::Function cb, Batch *b) {
    if (env != nullptr && cb != nullptr) {
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

  void Run() {
    struct epoll_event evs[2];
    while (!stop_.load()) {
      int n = epoll_wait(epFd_, evs, 2, -1);
      if (n < 0) {
        if (errno == EINTR) continue;
        break;
      }
      bool stop = false;
      for (int i = 0; i < n; i++) if (evs[i].data.fd == stopFd_) stop = true;
      ring_buffer__consume(rb_);
      if (!batch_->empty()) {
        Batch *b = batch_;
        batch_ = new Batch();
        batches_++;
        if (tsfn_.NonBlockingCall(b, CallJs) != napi_ok) delete b;  // closing: drop
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

  // Stops the poller (records already in the ring are consumed and delivered first).
  void Stop(bool fromJs) {
    if (!open_) return;
    open_ = false;
    stop_.store(true);
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
  bool open_ = false, hooked_ = true;
  napi_env env_ = nullptr;
};

}  // namespace

void InitRingBuffer(Napi::Env env, Napi::Object exports) {
  exports.Set("RingBuffer", RingBufferWrap::Define(env));
}

}  // namespace tortie
