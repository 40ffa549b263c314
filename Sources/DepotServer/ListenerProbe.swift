import DepotCore
import Foundation
#if canImport(Glibc)
    import Glibc
#endif

/// Checks before anything starts that every address depotd will listen on
/// can be bound, so a taken port is reported by the option that named it
/// (`--api 127.0.0.1:8640: address already in use`) and nothing half starts.
/// The sockets are closed at once (with SO_REUSEADDR, as the listeners use).
enum ListenerProbe {
    static func check(_ address: HostPort, option: String) throws(DepotError) {
        guard address.port != 0 else { return }
        var hints = addrinfo()
        hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        let found = getaddrinfo(address.host, String(address.port), &hints, &list)
        guard found == 0, let first = list else {
            throw .invalidArgument(
                "\(option) \(address): cannot resolve \(address.host): \(String(cString: gai_strerror(found)))")
        }
        defer { freeaddrinfo(list) }
        let fd = socket(first.pointee.ai_family, first.pointee.ai_socktype, first.pointee.ai_protocol)
        guard fd >= 0 else { throw .invalidArgument("\(option) \(address): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        guard bind(fd, first.pointee.ai_addr, first.pointee.ai_addrlen) == 0 else {
            throw .invalidArgument("\(option) \(address): \(String(cString: strerror(errno)).lowercased())")
        }
    }
}
