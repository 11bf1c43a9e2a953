// Shared plumbing for the tortie N-API addon: the failure type every JS-facing method converts
// into a BpfError (the TS class handed to init()), libbpf log capture, argument readers, the
// per-env state (error constructor + owned fds) and the network-namespace guard.
//
// Contract: C++ exceptions never cross into JS. Every JS-facing function body runs inside
// Guarded()/Reject paths that turn BpfFailure, Napi::Error and std::exception into a BpfError.
#pragma once

#include <napi.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <cerrno>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

namespace tortie {

// A failed operation: `code` is the stable ERR_BPF_* code, `op` the syscall/libbpf call,
// `err` a positive errno (0 when not an OS error), `detail` what was being done, `log` the
// libbpf output captured during the call (verifier log on a failed load).
struct BpfFailure : std::exception {
  std::string code, op;
  int err;
  std::string detail, log;
  BpfFailure(std::string c, std::string o, int e, std::string d, std::string l = "")
      : code(std::move(c)), op(std::move(o)), err(e), detail(std::move(d)), log(std::move(l)) {}
  const char *what() const noexcept override { return detail.c_str(); }
};

[[noreturn]] void Fail(const char *code, const char *op, int err, const std::string &detail,
                       const std::string &log = "");

// libbpf returns -errno (or NULL with errno set); normalise to a positive errno.
inline int ErrnoOf(long ret) { return ret < 0 ? static_cast<int>(-ret) : (errno ? errno : EINVAL); }

// Captures libbpf's printed output (info and warnings) for the current thread while alive.
class LogCapture {
 public:
  // withProgLogs: also keep libbpf's debug-level "PROG LOAD LOG" output (the verifier log of a
  // successful load, printed only when a kernel log level was requested).
  explicit LogCapture(bool withProgLogs = false);
  ~LogCapture();
  std::string Take() { return std::move(log_); }
 private:
  std::string log_;
  std::string *prev_;
  bool prevProgLogs_;
};
void InstallLibbpfPrint();

// Per-env state. Owned fds are the ones the addon created for JS (created maps, opened pins,
// dups); they are closed by fdClose or when the env is torn down.
enum class FdKind { Map, Prog, Other };
struct MapMeta {
  uint32_t type = 0, keySize = 0, valueSize = 0, maxEntries = 0, flags = 0, id = 0;
  std::string name;
};
struct OwnedFd {
  FdKind kind;
  bool haveMeta = false;
  MapMeta meta;
};
struct AddonState {
  Napi::FunctionReference errorCtor;
  std::unordered_map<int, OwnedFd> fds;
  ~AddonState();
};
AddonState &State(Napi::Env env);

Napi::Error MakeError(Napi::Env env, const BpfFailure &f);
Napi::Error MakeError(Napi::Env env, const char *code, const char *op, const std::exception &e);

// Runs body; any exception becomes a thrown BpfError and the return value is undefined.
template <typename F>
Napi::Value Guarded(const Napi::CallbackInfo &info, const char *code, const char *op, F &&body) {
  Napi::Env env = info.Env();
  try {
    return body();
  } catch (const BpfFailure &f) {
    MakeError(env, f).ThrowAsJavaScriptException();
  } catch (const std::exception &e) {
    if (env.IsExceptionPending()) env.GetAndClearPendingException();
    MakeError(env, code, op, e).ThrowAsJavaScriptException();
  } catch (...) {
    if (env.IsExceptionPending()) env.GetAndClearPendingException();
    MakeError(env, BpfFailure(code, op, 0, "unknown native exception")).ThrowAsJavaScriptException();
  }
  return env.Undefined();
}

// Argument readers: TS validated the values; these only guard memory safety and types.
int32_t ArgInt(const Napi::CallbackInfo &info, size_t i, const char *name);
uint32_t ArgU32(const Napi::CallbackInfo &info, size_t i, const char *name);
bool ArgBool(const Napi::CallbackInfo &info, size_t i, const char *name);
std::string ArgStr(const Napi::CallbackInfo &info, size_t i, const char *name);
std::string ArgOptStr(const Napi::CallbackInfo &info, size_t i, const char *name);  // "" if null
Napi::Buffer<uint8_t> ArgBuf(const Napi::CallbackInfo &info, size_t i, const char *name);
bool ArgIsNullish(const Napi::CallbackInfo &info, size_t i);

// Joins the calling thread to the network namespace at `path` (no-op for "") and always
// restores the original one on destruction. If restoring fails the process aborts: continuing
// in the wrong namespace would point later operations at the wrong interfaces.
class NetnsGuard {
 public:
  explicit NetnsGuard(const std::string &path);
  ~NetnsGuard();
  NetnsGuard(const NetnsGuard &) = delete;
  NetnsGuard &operator=(const NetnsGuard &) = delete;
 private:
  int orig_ = -1;
};

MapMeta QueryMapMeta(int fd);  // bpf_obj_get_info_by_fd; throws EBADF etc.
bool IsPerCpuMapType(uint32_t type);
uint32_t PossibleCpus();
FdKind FdKindOf(int fd);  // from /proc/self/fd link target (anon_inode:bpf-map / bpf-prog)

void InitMaps(Napi::Env env, Napi::Object exports);
void InitProgs(Napi::Env env, Napi::Object exports);
void InitNetif(Napi::Env env, Napi::Object exports);
void InitObject(Napi::Env env, Napi::Object exports);
void InitRingBuffer(Napi::Env env, Napi::Object exports);

}  // namespace tortie
