/// The hand-written OpenAPI 3.0 description served at `/openapi.json`, the Swagger UI page at
/// `/docs` (its JavaScript and CSS come from the unpkg CDN, so the browser needs internet access,
/// or from `/docs/...` when the API serves them itself: `--swagger-ui-dir`, `SwaggerUIAssets`)
/// and a small index page at `/`.
enum OpenAPIDocument {
    static let json = #"""
    {
      "openapi": "3.0.3",
      "info": {
        "title": "Petrel Collatz answers API",
        "version": "1.0.0",
        "description": "Answers about the Collatz chains the pipeline stored in ClickHouse. Values above 2^53 are JSON strings holding the exact decimal value."
      },
      "paths": {
        "/longest_step_chain": {
          "get": {
            "summary": "The start number with the most steps",
            "operationId": "longestStepChain",
            "responses": {
              "200": {"description": "The longest chain (ties: the smallest start number)", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/LongestChain"}}}},
              "404": {"$ref": "#/components/responses/NotFound"},
              "503": {"$ref": "#/components/responses/Unavailable"}
            }
          }
        },
        "/highest_value": {
          "get": {
            "summary": "The start number whose chain reaches the highest value",
            "operationId": "highestValue",
            "responses": {
              "200": {"description": "The highest peak (ties: the smallest start number)", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/HighestValue"}}}},
              "404": {"$ref": "#/components/responses/NotFound"},
              "503": {"$ref": "#/components/responses/Unavailable"}
            }
          }
        },
        "/part/{x}": {
          "get": {
            "summary": "Start numbers, other than x, whose chains pass through x",
            "operationId": "passesThrough",
            "parameters": [
              {"name": "x", "in": "path", "required": true, "description": "A value, 1 to 2^128-1, in decimal digits", "schema": {"type": "string", "pattern": "^[0-9]{1,39}$"}},
              {"name": "page", "in": "query", "required": false, "description": "Page number, from 1 (page × limit at most 1,000,000 results deep; use after= beyond)", "schema": {"type": "integer", "minimum": 1, "default": 1}},
              {"name": "limit", "in": "query", "required": false, "description": "Page size (default 100)", "schema": {"type": "integer", "minimum": 1, "maximum": 10000}},
              {"name": "after", "in": "query", "required": false, "description": "Return start numbers greater than this (the previous page's next_after)", "schema": {"type": "integer", "minimum": 0}}
            ],
            "responses": {
              "200": {"description": "One page, ascending", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/PassesThrough"}}}},
              "400": {"$ref": "#/components/responses/BadRequest"},
              "503": {"$ref": "#/components/responses/Unavailable"}
            }
          }
        },
        "/plot/{n}": {
          "get": {
            "summary": "A chart of every step of n's chain",
            "operationId": "plotChain",
            "parameters": [
              {"name": "n", "in": "path", "required": true, "description": "A start number, 1 to 18446744073709551615", "schema": {"type": "integer", "minimum": 1}},
              {"name": "format", "in": "query", "required": false, "description": "Image format: svg, or png (960 × 540, RGB)", "schema": {"type": "string", "enum": ["svg", "png"], "default": "svg"}},
              {"name": "scale", "in": "query", "required": false, "description": "Value axis scale", "schema": {"type": "string", "enum": ["linear", "log"], "default": "linear"}}
            ],
            "responses": {
              "200": {"description": "The chart", "content": {"image/svg+xml": {"schema": {"type": "string"}}, "image/png": {"schema": {"type": "string", "format": "binary"}}}},
              "400": {"$ref": "#/components/responses/BadRequest"},
              "404": {"$ref": "#/components/responses/NotFound"},
              "503": {"$ref": "#/components/responses/Unavailable"}
            }
          }
        },
        "/healthz": {
          "get": {
            "summary": "Liveness and store reachability",
            "operationId": "health",
            "responses": {
              "200": {"description": "Healthy", "content": {"application/json": {"schema": {"type": "object", "properties": {"status": {"type": "string"}}}}}},
              "503": {"$ref": "#/components/responses/Unavailable"}
            }
          }
        },
        "/metrics": {
          "get": {
            "summary": "Prometheus metrics",
            "operationId": "metrics",
            "responses": {"200": {"description": "Prometheus text format", "content": {"text/plain": {"schema": {"type": "string"}}}}}
          }
        }
      },
      "components": {
        "schemas": {
          "BigInteger": {"description": "A JSON integer up to 2^53, an exact decimal string above", "oneOf": [{"type": "integer"}, {"type": "string", "pattern": "^[0-9]+$"}]},
          "LongestChain": {"type": "object", "required": ["number", "steps"], "properties": {"number": {"type": "integer"}, "steps": {"type": "integer"}}},
          "HighestValue": {"type": "object", "required": ["number", "value", "value_decimal"], "properties": {"number": {"type": "integer"}, "value": {"$ref": "#/components/schemas/BigInteger"}, "value_decimal": {"type": "string"}}},
          "PassesThrough": {"type": "object", "required": ["x", "x_decimal", "page", "limit", "count", "numbers", "next_page", "next_after"], "properties": {"x": {"$ref": "#/components/schemas/BigInteger"}, "x_decimal": {"type": "string"}, "page": {"type": "integer"}, "limit": {"type": "integer"}, "count": {"type": "integer"}, "numbers": {"type": "array", "items": {"type": "integer"}}, "next_page": {"type": "integer", "nullable": true, "description": "The next page number; null on the last page"}, "next_after": {"type": "integer", "nullable": true, "description": "Or pass this as after= for the next page; null on the last page"}}},
          "Error": {"type": "object", "required": ["error", "status"], "properties": {"error": {"type": "string"}, "status": {"type": "integer"}}}
        },
        "responses": {
          "BadRequest": {"description": "A parameter is missing, not a decimal integer, negative or out of range", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
          "NotFound": {"description": "Nothing stored for this number (or nothing stored yet)", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
          "Unavailable": {"description": "The answers store (ClickHouse) does not answer", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
        }
      }
    }
    """#

    /// The Swagger UI page loading `swagger-ui.css` and `swagger-ui-bundle.js` from `assetBase`
    /// (`SwaggerUIAssets.cdnBase` or `.localBase`).
    static func swaggerPage(assetBase: String) -> String {
        let local = assetBase == SwaggerUIAssets.localBase
        let icon = local ? "\n  <link rel=\"icon\" type=\"image/png\" href=\"\(assetBase)favicon-32x32.png\" sizes=\"32x32\">" : ""
        return #"""
        <!DOCTYPE html>
        <html lang="en">
        <head>
          <meta charset="utf-8">
          <title>Petrel answers API</title>
          <link rel="stylesheet" href="\#(assetBase)swagger-ui.css">\#(icon)
        </head>
        <body>
          <div id="swagger-ui"></div>
          <script src="\#(assetBase)swagger-ui-bundle.js"\#(local ? "" : " crossorigin")></script>
          <script>
            window.onload = () => { window.ui = SwaggerUIBundle({ url: "openapi.json", dom_id: "#swagger-ui" }); };
          </script>
        </body>
        </html>
        """#
    }

    static let indexPage = #"""
    <!DOCTYPE html>
    <html lang="en">
    <head><meta charset="utf-8"><title>Petrel answers API</title></head>
    <body style="font-family: sans-serif">
      <h1>Petrel Collatz answers</h1>
      <ul>
        <li><a href="longest_step_chain">longest_step_chain</a></li>
        <li><a href="highest_value">highest_value</a></li>
        <li><a href="part/16">part/16</a> (chains through 16)</li>
        <li><a href="plot/27">plot/27</a> (<a href="plot/27?format=png">PNG</a>)</li>
        <li><a href="docs">docs</a> (Swagger UI), <a href="openapi.json">openapi.json</a></li>
        <li><a href="healthz">healthz</a>, <a href="metrics">metrics</a></li>
      </ul>
    </body>
    </html>
    """#
}
