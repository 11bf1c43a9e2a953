#include "common.h"

#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace tortie {

void Fail(const char *code, const char *op, int err, const std::string &detail,
          const std::string &log) {
  throw BpfFailure(code, op, err, detail, log);
}

// ---- libbpf print capture -------------------------------------------------------------------
// libbpf has one global print callback; it writes into the capture buffer of the calling thread
// (loads run on libuv worker threads, map ops on the main thread). Output outside a capture is
// dropped: library code does not write to the console.
static thread_local std::string *tl_capture = nullptr;
static thread_local bool tl_prog_logs = false;
static constexpr size_t kMaxCapture = 4 << 20;  // keep the tail: the verifier's verdict is last

static int LibbpfPrint(enum libbpf_print_level level, const char *fmt, va_list ap) {
  if (tl_capture == nullptr || (level == LIBBPF_DEBUG && !tl_prog_logs)) return 0;
  va_list ap2;
  va_copy(ap2, ap);
  int n = vsnprintf(nullptr, 0, fmt, ap2);
  va_end(ap2);
  if (n <= 0) return 0;
  std::string chunk(static_cast<size_t>(n) + 1, '\0');
  vsnprintf(chunk.data(), chunk.size(), fmt, ap);
  chunk.resize(static_cast<size_t>(n));
  if (level == LIBBPF_DEBUG && chunk.find("PROG LOAD LOG") == std::string::npos) return n;
  tl_capture->append(chunk);
  if (tl_capture->size() > kMaxCapture) tl_capture->erase(0, tl_capture->size() - kMaxCapture);
  return n;
}

void InstallLibbpfPrint() { libbpf_set_print(LibbpfPrint); }

LogCapture::LogCapture(bool withProgLogs) : prev_(tl_capture), prevProgLogs_(tl_prog_logs) {
  tl_capture = &log_;
  tl_prog_logs = withProgLogs;
}
LogCapture::~LogCapture() {
  tl_capture = prev_;
  tl_prog_logs = prevProgLogs_;
}

// ---- state & errors ---------------------------------------------------------------------------
AddonState::~AddonState() {
  for (auto &kv : fds) close(kv.first);
  fds.clear();
}

AddonState &State(Napi::Env env) {
  AddonState *s = env.GetInstanceData<AddonState>();
  if (s == nullptr) throw BpfFailure("ERR_BPF_INTERNAL", "init", 0, "addon state missing");
  return *s;
}

Napi::Error MakeError(Napi::Env env, const BpfFailure &f) {
  AddonState *s = env.GetInstanceData<AddonState>();
  if (s == nullptr || s->errorCtor.IsEmpty()) {
    return Napi::Error::New(env, "tortie native addon: init(BpfError) was not called; " + f.detail);
  }
  Napi::Object o = s->errorCtor.New({Napi::String::New(env, f.code), Napi::String::New(env, f.op),
                                     Napi::Number::New(env, f.err), Napi::String::New(env, f.detail),
                                     Napi::String::New(env, f.log)});
  return Napi::Error(env, o);
}

Napi::Error MakeError(Napi::Env env, const char *code, const char *op, const std::exception &e) {
  return MakeError(env, BpfFailure(code, op, 0, std::string("native: ") + e.what()));
}

// ---- arguments --------------------------------------------------------------------------------
static void ArgFail(size_t i, const char *name, const char *want) {
  Fail("ERR_BPF_INVALID_ARG", "argument", EINVAL,
       std::string("argument ") + std::to_string(i) + " (" + name + ") must be " + want);
}

int32_t ArgInt(const Napi::CallbackInfo &info, size_t i, const char *name) {
  if (!info[i].IsNumber()) ArgFail(i, name, "a number");
  return info[i].As<Napi::Number>().Int32Value();
}
uint32_t ArgU32(const Napi::CallbackInfo &info, size_t i, const char *name) {
  if (!info[i].IsNumber()) ArgFail(i, name, "a number");
  double d = info[i].As<Napi::Number>().DoubleValue();
  if (d < 0 || d > 4294967295.0 || d != static_cast<double>(static_cast<uint64_t>(d)))
    ArgFail(i, name, "an integer in 0..2^32-1");
  return static_cast<uint32_t>(d);
}
bool ArgBool(const Napi::CallbackInfo &info, size_t i, const char *name) {
  if (!info[i].IsBoolean()) ArgFail(i, name, "a boolean");
  return info[i].As<Napi::Boolean>().Value();
}
std::string ArgStr(const Napi::CallbackInfo &info, size_t i, const char *name) {
  if (!info[i].IsString()) ArgFail(i, name, "a string");
  return info[i].As<Napi::String>().Utf8Value();
}
bool ArgIsNullish(const Napi::CallbackInfo &info, size_t i) {
  return info[i].IsNull() || info[i].IsUndefined();
}
std::string ArgOptStr(const Napi::CallbackInfo &info, size_t i, const char *name) {
  if (ArgIsNullish(info, i)) return "";
  return ArgStr(info, i, name);
}
Napi::Buffer<uint8_t> ArgBuf(const Napi::CallbackInfo &info, size_t i, const char *name) {
  if (!info[i].IsBuffer()) ArgFail(i, name, "a Buffer");
  return info[i].As<Napi::Buffer<uint8_t>>();
}

// ---- namespaces -------------------------------------------------------------------------------
NetnsGuard::NetnsGuard(const std::string &path) {
  if (path.empty()) return;
  int target = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (target < 0) Fail("ERR_BPF_NETNS", "open", errno, "cannot open network namespace " + path);
  orig_ = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  if (orig_ < 0) {
    int e = errno;
    close(target);
    Fail("ERR_BPF_NETNS", "open", e, "cannot open /proc/thread-self/ns/net");
  }
  if (setns(target, CLONE_NEWNET) != 0) {
    int e = errno;
    close(target);
    close(orig_);
    orig_ = -1;
    Fail("ERR_BPF_NETNS", "setns", e, "cannot enter network namespace " + path);
  }
  close(target);
}

NetnsGuard::~NetnsGuard() {
  if (orig_ < 0) return;
  if (setns(orig_, CLONE_NEWNET) != 0) {
    fprintf(stderr, "tortie native: cannot restore the original network namespace (%s); aborting\n",
            strerror(errno));
    abort();
  }
  close(orig_);
}

// ---- fd helpers -------------------------------------------------------------------------------
MapMeta QueryMapMeta(int fd) {
  struct bpf_map_info info;
  memset(&info, 0, sizeof(info));
  __u32 len = sizeof(info);
  int r = bpf_obj_get_info_by_fd(fd, &info, &len);
  if (r != 0) Fail("ERR_BPF_MAP_INFO", "bpf_obj_get_info_by_fd", ErrnoOf(r),
                   "cannot read map info of fd " + std::to_string(fd));
  MapMeta m;
  m.type = info.type;
  m.keySize = info.key_size;
  m.valueSize = info.value_size;
  m.maxEntries = info.max_entries;
  m.flags = info.map_flags;
  m.id = info.id;
  m.name = info.name;
  return m;
}

bool IsPerCpuMapType(uint32_t type) {
  return type == BPF_MAP_TYPE_PERCPU_HASH || type == BPF_MAP_TYPE_PERCPU_ARRAY ||
         type == BPF_MAP_TYPE_LRU_PERCPU_HASH || type == BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE;
}

uint32_t PossibleCpus() {
  static int n = libbpf_num_possible_cpus();
  if (n <= 0) Fail("ERR_BPF_CPUS", "libbpf_num_possible_cpus", ErrnoOf(n), "cannot count CPUs");
  return static_cast<uint32_t>(n);
}

FdKind FdKindOf(int fd) {
  char path[64], target[128];
  snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
  ssize_t n = readlink(path, target, sizeof(target) - 1);
  if (n < 0) Fail("ERR_BPF_BAD_FD", "readlink", errno == ENOENT ? EBADF : errno,
                  "fd " + std::to_string(fd) + " is not open");
  target[n] = '\0';
  if (strcmp(target, "anon_inode:bpf-map") == 0) return FdKind::Map;
  if (strcmp(target, "anon_inode:bpf-prog") == 0) return FdKind::Prog;
  return FdKind::Other;
}

}  // namespace tortie
