package e2e

import "github.com/gatehouse/gatehouse"

var pageAll = gatehouse.Page{Limit: 200}
