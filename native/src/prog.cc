// Program operations: info and BPF_PROG_TEST_RUN. The batched runner takes many packets in one
// call (one Buffer + a Uint32Array of lengths) and returns all verdicts, so pushing 10^5 packets
// costs one N-API crossing instead of 10^5; it exists in a synchronous form and an off-loop form
// (AsyncWorker + Promise) for large batches.
#include "common.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

namespace tortie {
namespace {

struct BatchInput {
  std::vector<uint8_t> packets;
  std::vector<uint32_t> lengths;
  int repeat = 1;
  bool wantData = false;
  uint32_t outExtra = 256;  // room beyond each input for programs that grow the packet
  std::string netns;        // run inside this network namespace ("" = the caller's)
};

struct BatchOutput {
  std::vector<uint32_t> retvals, durations, outLens;
  std::vector<uint8_t> out;
};

void RunBatch(int fd, const BatchInput &in, BatchOutput &res) {
  // Helpers such as bpf_fib_lookup and the XDP ctx's ingress_ifindex resolve in the calling
  // thread's namespace; the guard runs the batch in the requested one (on whichever thread).
  NetnsGuard g(in.netns);
  const size_t n = in.lengths.size();
  res.retvals.resize(n);
  res.durations.resize(n);
  if (in.wantData) res.outLens.resize(n);
  std::vector<uint8_t> scratch;
  size_t off = 0;
  for (size_t i = 0; i < n; i++) {
    const uint32_t len = in.lengths[i];
    LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = in.packets.data() + off, .data_size_in = len,
                .repeat = in.repeat);
    if (in.wantData) {
      scratch.resize(static_cast<size_t>(len) + in.outExtra);
      opts.data_out = scratch.data();
      opts.data_size_out = static_cast<__u32>(scratch.size());
    }
    int r = bpf_prog_test_run_opts(fd, &opts);
    if (r < 0)
      Fail("ERR_BPF_PROG_TEST_RUN", "bpf_prog_test_run_opts", ErrnoOf(r),
           "test run of packet " + std::to_string(i) + " (" + std::to_string(len) + " bytes) on prog fd " +
               std::to_string(fd));
    res.retvals[i] = opts.retval;
    res.durations[i] = opts.duration;
    if (in.wantData) {
      res.outLens[i] = opts.data_size_out;
      res.out.insert(res.out.end(), scratch.begin(), scratch.begin() + opts.data_size_out);
    }
    off += len;
  }
}

void ReadBatchArgs(const Napi::CallbackInfo &info, BatchInput &in) {
  auto pk = ArgBuf(info, 1, "packets");
  if (!info[2].IsTypedArray() || info[2].As<Napi::TypedArray>().TypedArrayType() != napi_uint32_array)
    Fail("ERR_BPF_INVALID_ARG", "argument", EINVAL, "argument 2 (lengths) must be a Uint32Array");
  auto lens = info[2].As<Napi::Uint32Array>();
  in.lengths.assign(lens.Data(), lens.Data() + lens.ElementLength());
  size_t total = 0;
  for (uint32_t l : in.lengths) total += l;
  if (total != pk.Length())
    Fail("ERR_BPF_INVALID_ARG", "argument", EINVAL,
         "packet lengths add up to " + std::to_string(total) + " bytes but packets is " +
             std::to_string(pk.Length()) + " bytes");
  in.packets.assign(pk.Data(), pk.Data() + pk.Length());
  in.repeat = ArgInt(info, 3, "repeat");
  in.wantData = ArgBool(info, 4, "wantData");
  in.outExtra = ArgU32(info, 5, "outExtra");
  in.netns = ArgOptStr(info, 6, "netns");
}

Napi::Object BatchToJs(Napi::Env env, const BatchInput &in, const BatchOutput &res) {
  const size_t n = res.retvals.size();
  Napi::Object o = Napi::Object::New(env);
  auto rv = Napi::Uint32Array::New(env, n);
  auto du = Napi::Uint32Array::New(env, n);
  if (n) {
    memcpy(rv.Data(), res.retvals.data(), n * 4);
    memcpy(du.Data(), res.durations.data(), n * 4);
  }
  o.Set("retvals", rv);
  o.Set("durations", du);
  if (in.wantData) {
    auto ol = Napi::Uint32Array::New(env, n);
    if (n) memcpy(ol.Data(), res.outLens.data(), n * 4);
    o.Set("dataLengths", ol);
    o.Set("data", Napi::Buffer<uint8_t>::Copy(env, res.out.data(), res.out.size()));
  }
  return o;
}

// progTestRun(fd, data, repeat, ctx | null, dataOutCap, ctxOutCap) -> { retval, duration, data, ctx }
Napi::Value ProgTestRun(const Napi::CallbackInfo &info) {
  return Guarded(info, "ERR_BPF_PROG_TEST_RUN", "bpf_prog_test_run_opts", [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    int fd = ArgInt(info, 0, "fd");
    auto data = ArgBuf(info, 1, "data");
    int repeat = ArgInt(info, 2, "repeat");
    bool haveCtx = !ArgIsNullish(info, 3);
    uint32_t outCap = ArgU32(info, 4, "dataOutCap");
    uint32_t ctxCap = ArgU32(info, 5, "ctxOutCap");
    std::string ns = ArgOptStr(info, 6, "netns");
    std::vector<uint8_t> out(outCap), ctxOut(haveCtx ? ctxCap : 0);
    LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = data.Data(), .data_out = out.data(),
                .data_size_in = static_cast<__u32>(data.Length()), .data_size_out = outCap,
                .repeat = repeat);
    if (haveCtx) {
      auto ctx = ArgBuf(info, 3, "ctx");
      opts.ctx_in = ctx.Data();
      opts.ctx_size_in = static_cast<__u32>(ctx.Length());
      opts.ctx_out = ctxOut.data();
      opts.ctx_size_out = ctxCap;
    }
    LogCapture cap;
    int r;
    {
      NetnsGuard g(ns);
      r = bpf_prog_test_run_opts(fd, &opts);
    }
    if (r < 0)
      Fail("ERR_BPF_PROG_TEST_RUN", "bpf_prog_test_run_opts", ErrnoOf(r),
           "test run of a " + std::to_string(data.Length()) + "-byte packet on prog fd " + std::to_string(fd) +
               (ErrnoOf(r) == ENOSPC ? " (output larger than dataOutCap " + std::to_string(outCap) + ")" : ""),
           cap.Take());
    Napi::Object o = Napi::Object::New(env);
    o.Set("retval", opts.retval);
    o.Set("duration", opts.duration);
    o.Set("data", Napi::Buffer<uint8_t>::Copy(env, out.data(), opts.data_size_out));
    if (haveCtx) o.Set("ctx", Napi::Buffer<uint8_t>::Copy(env, ctxOut.data(), opts.ctx_size_out));
    else o.Set("ctx", env.Null());
    return o;
  });
}

// progTestRunBatch(fd, packets, lengths, repeat, wantData, outExtra) -> batch result (sync)
Napi::Value ProgTestRunBatch(const Napi::CallbackInfo &info) {
  return Guarded(info, "ERR_BPF_PROG_TEST_RUN", "bpf_prog_test_run_opts", [&]() -> Napi::Value {
    int fd = ArgInt(info, 0, "fd");
    BatchInput in;
    ReadBatchArgs(info, in);
    BatchOutput res;
    RunBatch(fd, in, res);
    return BatchToJs(info.Env(), in, res);
  });
}

class BatchWorker : public Napi::AsyncWorker {
 public:
  BatchWorker(Napi::Env env, int fd, BatchInput &&in)
      : Napi::AsyncWorker(env, "tortie:progTestRunBatch"), deferred_(Napi::Promise::Deferred::New(env)),
        fd_(fd), in_(std::move(in)), failure_("ERR_BPF_PROG_TEST_RUN", "bpf_prog_test_run_opts", 0, "") {}
  ~BatchWorker() override {
    if (fd_ >= 0) close(fd_);
  }
  Napi::Promise Promise() { return deferred_.Promise(); }

 protected:
  void Execute() override {
    try {
      RunBatch(fd_, in_, out_);
    } catch (const BpfFailure &f) {
      failure_ = f;
      SetError(f.detail);
    } catch (const std::exception &e) {
      failure_.detail = std::string("native: ") + e.what();
      SetError(failure_.detail);
    }
  }
  void OnOK() override {
    Napi::Env env = Env();
    try {
      deferred_.Resolve(BatchToJs(env, in_, out_));
    } catch (const std::exception &e) {
      if (env.IsExceptionPending()) env.GetAndClearPendingException();
      deferred_.Reject(MakeError(env, "ERR_BPF_PROG_TEST_RUN", "progTestRunBatch", e).Value());
    }
  }
  void OnError(const Napi::Error &) override {
    Napi::Env env = Env();
    try {
      deferred_.Reject(MakeError(env, failure_).Value());
    } catch (...) {
      if (env.IsExceptionPending()) env.GetAndClearPendingException();
    }
  }

 private:
  Napi::Promise::Deferred deferred_;
  int fd_;  // a dup owned by the worker: the caller may close its fd while we run
  BatchInput in_;
  BatchOutput out_;
  BpfFailure failure_;
};

// progTestRunBatchAsync(fd, packets, lengths, repeat, wantData, outExtra) -> Promise<batch result>
Napi::Value ProgTestRunBatchAsync(const Napi::CallbackInfo &info) {
  return Guarded(info, "ERR_BPF_PROG_TEST_RUN", "bpf_prog_test_run_opts", [&]() -> Napi::Value {
    int fd = ArgInt(info, 0, "fd");
    BatchInput in;
    ReadBatchArgs(info, in);
    if (FdKindOf(fd) != FdKind::Prog)
      Fail("ERR_BPF_PROG_TEST_RUN", "bpf_prog_test_run_opts", EBADF, "fd " + std::to_string(fd) + " is not a BPF program");
    int dfd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    if (dfd < 0) Fail("ERR_BPF_PROG_TEST_RUN", "fcntl", errno, "duplicate prog fd " + std::to_string(fd));
    auto *w = new BatchWorker(info.Env(), dfd, std::move(in));
    Napi::Promise p = w->Promise();
    w->Queue();
    return p;
  });
}

std::string Hex(const uint8_t *p, size_t n) {
  static const char *d = "0123456789abcdef";
  std::string s;
  for (size_t i = 0; i < n; i++) {
    s += d[p[i] >> 4];
    s += d[p[i] & 15];
  }
  return s;
}

// progInfo(fd) -> { type, id, name, tag, runCount, runTimeNs }
Napi::Value ProgInfo(const Napi::CallbackInfo &info) {
  return Guarded(info, "ERR_BPF_PROG_INFO", "bpf_obj_get_info_by_fd", [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    int fd = ArgInt(info, 0, "fd");
    if (FdKindOf(fd) != FdKind::Prog)
      Fail("ERR_BPF_PROG_INFO", "bpf_obj_get_info_by_fd", EINVAL, "fd " + std::to_string(fd) + " is not a BPF program");
    struct bpf_prog_info pi;
    memset(&pi, 0, sizeof(pi));
    __u32 len = sizeof(pi);
    int r = bpf_obj_get_info_by_fd(fd, &pi, &len);
    if (r < 0) Fail("ERR_BPF_PROG_INFO", "bpf_obj_get_info_by_fd", ErrnoOf(r), "program info of fd " + std::to_string(fd));
    std::vector<__u32> mapIds(pi.nr_map_ids);
    if (pi.nr_map_ids > 0) {
      struct bpf_prog_info pi2;
      memset(&pi2, 0, sizeof(pi2));
      pi2.nr_map_ids = pi.nr_map_ids;
      pi2.map_ids = reinterpret_cast<__u64>(mapIds.data());
      len = sizeof(pi2);
      r = bpf_obj_get_info_by_fd(fd, &pi2, &len);
      if (r < 0) Fail("ERR_BPF_PROG_INFO", "bpf_obj_get_info_by_fd", ErrnoOf(r), "map ids of program fd " + std::to_string(fd));
      mapIds.resize(std::min(pi.nr_map_ids, pi2.nr_map_ids));
    }
    Napi::Object o = Napi::Object::New(env);
    Napi::Array ids = Napi::Array::New(env, mapIds.size());
    for (size_t i = 0; i < mapIds.size(); i++) ids.Set(static_cast<uint32_t>(i), mapIds[i]);
    o.Set("mapIds", ids);
    o.Set("type", pi.type);
    o.Set("id", pi.id);
    o.Set("name", std::string(pi.name));
    o.Set("tag", Hex(pi.tag, sizeof(pi.tag)));
    o.Set("runCount", static_cast<double>(pi.run_cnt));
    o.Set("runTimeNs", static_cast<double>(pi.run_time_ns));
    return o;
  });
}

// progFdById(id) -> owned fd
Napi::Value ProgFdById(const Napi::CallbackInfo &info) {
  return Guarded(info, "ERR_BPF_PROG_GET", "bpf_prog_get_fd_by_id", [&]() -> Napi::Value {
    uint32_t id = ArgU32(info, 0, "id");
    int fd = bpf_prog_get_fd_by_id(id);
    if (fd < 0) Fail("ERR_BPF_PROG_GET", "bpf_prog_get_fd_by_id", ErrnoOf(fd), "open program id " + std::to_string(id));
    State(info.Env()).fds[fd] = OwnedFd{FdKind::Prog, false, {}};
    return Napi::Number::New(info.Env(), fd);
  });
}

}  // namespace

void InitProgs(Napi::Env env, Napi::Object exports) {
  exports.Set("progTestRun", Napi::Function::New(env, ProgTestRun, "progTestRun"));
  exports.Set("progTestRunBatch", Napi::Function::New(env, ProgTestRunBatch, "progTestRunBatch"));
  exports.Set("progTestRunBatchAsync", Napi::Function::New(env, ProgTestRunBatchAsync, "progTestRunBatchAsync"));
  exports.Set("progInfo", Napi::Function::New(env, ProgInfo, "progInfo"));
  exports.Set("progFdById", Napi::Function::New(env, ProgFdById, "progFdById"));
}

}  // namespace tortie
