// The key-value pair form: show the field of the chosen type only, ask to
// confirm a change of type, and tell whether the store typed exists.
"use strict";
{
    // The type the page opened with: the hidden copy Django renders beside the menu.
    function openedType(form) {
        const initial = form.querySelector("input[name='initial-value_type']");
        return initial ? initial.value : null;
    }

    function showChosenType(form) {
        const menu = form.querySelector("#id_value_type");
        if (!menu) {
            return;
        }
        for (const option of menu.options) {
            const row = form.querySelector(".field-value_" + option.value);
            if (!option.value || !row) {
                continue;
            }
            const chosen = option.value === menu.value;
            row.style.display = chosen ? "" : "none";
            // Fields that are not shown are not sent, so only the chosen one is read.
            for (const input of row.querySelectorAll("input, textarea, select")) {
                if (!input.name.startsWith("initial-")) {
                    input.disabled = !chosen;
                }
            }
        }
        const confirm = form.querySelector(".field-confirm_type_change");
        const opened = openedType(form);
        if (confirm) {
            confirm.style.display = opened === null || menu.value === opened ? "none" : "";
        }
    }

    function showStoreHint(form) {
        const input = form.querySelector("#id_store[list]");
        const hint = form.querySelector(".keyval-store-hint");
        const data = document.getElementById("keyval-store-serializers");
        if (!input || !hint || !data) {
            return;
        }
        const stores = JSON.parse(data.textContent);
        const name = input.value;
        hint.classList.remove("keyval-new-store");
        if (!name) {
            hint.textContent = "";
        } else if (Object.hasOwn(stores, name)) {
            const serializer = stores[name] || hint.dataset.defaultSerializer;
            hint.textContent = "Existing store: values are written with the " +
                serializer + " serializer" + (stores[name] ? ", as its other pairs are." : ".");
        } else {
            hint.classList.add("keyval-new-store");
            hint.textContent = "⚠ New store: no store is called “" + name +
                "” yet. Saving creates it; its values are written with the " +
                hint.dataset.defaultSerializer + " serializer (KEYVAL_SERIALIZER).";
        }
    }

    window.addEventListener("load", function() {
        const form = document.querySelector("#keyvalpair_form");
        if (!form) {
            return;
        }
        const menu = form.querySelector("#id_value_type");
        if (menu) {
            menu.addEventListener("change", () => showChosenType(form));
            showChosenType(form);
        }
        const store = form.querySelector("#id_store[list]");
        if (store) {
            store.addEventListener("input", () => showStoreHint(form));
            showStoreHint(form);
        }
    });
}
