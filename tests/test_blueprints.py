"""How the application is put together from blueprints."""


def test_api_routes_live_in_the_api_blueprint(app):
    endpoints = {rule.rule: rule.endpoint for rule in app.url_map.iter_rules()}
    api_routes = {rule: endpoint for rule, endpoint in endpoints.items()
                  if rule.startswith("/api/")}
    assert set(api_routes) == {"/api/users", "/api/users/<int:id>", "/api/tokens",
                               "/api/messages", "/api/messages/<int:id>", "/api/stats"}
    assert all(endpoint.startswith("api.") for endpoint in api_routes.values())
    # and the other way round: the blueprint's prefix reaches every one of its routes
    assert all(rule.startswith("/api/") for rule, endpoint in endpoints.items()
               if endpoint.startswith("api."))


def test_each_resource_has_its_own_module(app):
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api/"):
            resource = rule.rule.split("/")[2]  # users, tokens, messages or stats
            assert app.view_functions[rule.endpoint].__module__ == f"flack.api.{resource}"
