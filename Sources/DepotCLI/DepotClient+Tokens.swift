import DepotCore

extension DepotClient {
    public func tokens() async throws -> [TokenInfo] { try await get("/v1/tokens", as: TokenList.self).tokens }

    public func createToken(_ body: CreateTokenRequest) async throws -> CreatedToken {
        try await post("/v1/tokens", body, as: CreatedToken.self)
    }

    public func revokeToken(_ name: String) async throws { try await delete("/v1/tokens/\(name)") }
}
