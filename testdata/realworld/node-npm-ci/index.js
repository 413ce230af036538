const isNumber = require("is-number");
console.log("is-number(42):", isNumber(42), "is-number('x'):", isNumber("x"));
