import Hummingbird
import Synchronization

/// The routes' paths and methods, filled once the router is built, so an
/// unmatched request can be told apart: a path no route has is 404, a path
/// some route has under other methods is 405 with `Allow` naming them
/// (RFC 9110 §15.5.6: "The origin server MUST generate an Allow header field
/// in a 405 response containing a list of the target resource's currently
/// supported methods"). Hummingbird's router answers both with 404.
final class RouteTable: Sendable {
    private struct Route {
        /// Path segments; nil where the route captures a parameter.
        let segments: [Substring?]
        let method: String
    }

    private let routes = Mutex<[Route]>([])

    func fill(from router: Router<DepotRequestContext>) {
        let table = router.routes.map { route in
            Route(
                segments: route.path.description.split(separator: "/").map {
                    $0.hasPrefix(":") || $0.hasPrefix("{") || $0 == "*" ? nil : $0
                },
                method: route.method.rawValue)
        }
        routes.withLock { $0 = table }
    }

    /// The methods served at this path, sorted; empty when no route has it.
    /// Where several route paths match (`exports/publish`, `exports/:pool`),
    /// the router takes the one with a literal segment first, so does this.
    func methods(at path: String) -> [String] {
        let asked = path.split(separator: "/")
        let matching = routes.withLock { table in
            table.filter { route in
                route.segments.count == asked.count
                    && zip(route.segments, asked).allSatisfy { segment, part in segment == nil || segment == part }
            }
        }
        let literal = { (route: Route) in route.segments.map { $0 == nil ? 0 : 1 } }
        guard let best = matching.map(literal).max(by: { $0.lexicographicallyPrecedes($1) }) else { return [] }
        return Set(matching.filter { literal($0) == best }.map(\.method)).sorted()
    }
}
