import DepotCore
import Foundation

extension DepotClient {
    public func tokens() async throws -> [TokenInfo] { try await get("/v1/tokens", as: TokenList.self).tokens }

    public func createToken(_ body: CreateTokenRequest) async throws -> CreatedToken {
        try await post("/v1/tokens", body, as: CreatedToken.self)
    }

    public func revokeToken(_ name: String) async throws { try await delete("/v1/tokens/\(name)") }

    public func audit(_ query: [URLQueryItem]) async throws -> [AuditEntry] {
        var components = URLComponents()
        components.path = "/v1/audit"
        components.queryItems = query.isEmpty ? nil : query
        return try await get(components.string ?? "/v1/audit", as: AuditList.self).entries
    }
}
